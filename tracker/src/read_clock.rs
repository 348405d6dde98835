//! When the first byte of a not-yet-complete message arrived on a
//! connection, so that a message trickled in slowly can be cut at a
//! deadline (`connection.publish_frame_timeout_secs`) instead of held
//! until the idle timer.
//!
//! The WebSocket codec hides partial frames, so the TCP stream itself is
//! wrapped: every read that yields bytes marks the clock if it is clear,
//! and the connection task clears it when a whole message came out.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Time of the first byte read since the last [`ReadClock::clear`].
#[derive(Debug)]
pub struct ReadClock {
    epoch: Instant,
    /// Milliseconds since `epoch`, plus one; 0 = no byte pending.
    since: AtomicU64,
}

impl ReadClock {
    /// A clear clock.
    pub fn new() -> Arc<Self> {
        Arc::new(ReadClock {
            epoch: Instant::now(),
            since: AtomicU64::new(0),
        })
    }

    fn mark(&self) {
        // Most reads find it already marked: skip the clock read then.
        if self.since.load(Ordering::Relaxed) != 0 {
            return;
        }
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        let _ = self
            .since
            .compare_exchange(0, ms, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A whole message was read: nothing is pending any more.
    pub fn clear(&self) {
        self.since.store(0, Ordering::Release);
    }

    /// When the first byte of the pending message was read, if any.
    pub fn pending_since(&self) -> Option<Instant> {
        match self.since.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.epoch + std::time::Duration::from_millis(ms - 1)),
        }
    }
}

/// A stream that marks its [`ReadClock`] whenever a read yields bytes.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    clock: Arc<ReadClock>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, clock: Arc<ReadClock>) -> Self {
        Watched { inner, clock }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.mark();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
