//! What waits to be written to a peer's data channel, counted per peer and
//! across the process, and the gate that stops reading a peer's frames
//! while too much waits.
//!
//! Why stop reading rather than answer `Reject`: a peer that sends requests
//! and never reads would get its `Reject`s queued just like pieces, so
//! rejecting bounds nothing. Not reading lets SCTP push back instead: the
//! peer's frames wait in our receive window (`--sctp-window`, 64 KiB) and
//! then on its side, at no cost to us; an honest peer that reads resumes as
//! soon as its queue drains.
//!
//! Bound per peer: [`MAX_QUEUED_BYTES_PER_PEER`], plus what the frames
//! already read may still produce (at most [`MAX_UNHANDLED_FRAMES`] frames
//! the driver has not handled, each answered by at most one piece frame),
//! plus the data channel's own send buffer (`PeerNet::send_buffer_limit`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use peerhost_core::wire::MAX_FRAME_LEN;
use tokio::sync::Notify;

/// Default bytes queued for one peer's writer before its frames stop being
/// read: 1 MiB, 64 pieces of the largest size (as many as a peer may
/// request at once).
pub const MAX_QUEUED_BYTES_PER_PEER: usize = 1024 * 1024;

/// Default bytes queued for the writers of all peers of the process before
/// every peer's frames stop being read: 16 MiB (half of 32 peers' full
/// queues).
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// Frames read from one peer and not yet handled by the driver. Bounds
/// what a peer holds in the driver's event queue and how far its queue can
/// pass the byte cap before the gate sees it.
pub(crate) const MAX_UNHANDLED_FRAMES: usize = 16;

/// The bytes queued to every peer of the process.
#[derive(Debug)]
pub(crate) struct Totals {
    queued: AtomicUsize,
    drained: Notify,
    cap: usize,
    /// Highest `queued` ever reached.
    peak: AtomicUsize,
    /// Highest bytes ever queued to any one peer.
    peak_per_peer: AtomicUsize,
}

/// What the seeder's upload queues hold and have held: the figures an
/// operator (or a test driving a hostile peer) checks the caps against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadQueues {
    /// Bytes queued now for the writers of all peers.
    pub queued: usize,
    /// The most `queued` has ever been.
    pub peak: usize,
    /// The most ever queued for any one peer.
    pub peak_per_peer: usize,
    /// The process cap (`MAX_QUEUED_BYTES` by default).
    pub cap: usize,
    /// The per-peer cap (`MAX_QUEUED_BYTES_PER_PEER` by default).
    pub cap_per_peer: usize,
    /// How far past `cap_per_peer` a peer's queue may go by design: every
    /// frame read but not yet handled ([`MAX_UNHANDLED_FRAMES`]) answered
    /// by one frame of at most `wire::MAX_FRAME_LEN` bytes.
    pub slack_per_peer: usize,
}

impl Totals {
    pub(crate) fn new(cap: usize) -> Arc<Totals> {
        Arc::new(Totals {
            queued: AtomicUsize::new(0),
            drained: Notify::new(),
            cap,
            peak: AtomicUsize::new(0),
            peak_per_peer: AtomicUsize::new(0),
        })
    }

    /// Bytes queued to all peers.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// A snapshot, given the per-peer cap (which lives in `PeerNet`).
    pub(crate) fn snapshot(&self, cap_per_peer: usize) -> UploadQueues {
        UploadQueues {
            queued: self.queued(),
            peak: self.peak.load(Ordering::Acquire),
            peak_per_peer: self.peak_per_peer.load(Ordering::Acquire),
            cap: self.cap,
            cap_per_peer,
            slack_per_peer: MAX_UNHANDLED_FRAMES * MAX_FRAME_LEN,
        }
    }
}

/// One peer's outbox: its byte count and its reader's gate.
#[derive(Debug)]
pub(crate) struct Outbox {
    queued: AtomicUsize,
    unhandled: AtomicUsize,
    progress: Notify,
    cap: usize,
    totals: Arc<Totals>,
}

/// One frame on its way to the writer; its bytes count until it is dropped
/// (written, or discarded with the connection).
#[derive(Debug)]
pub(crate) struct Queued {
    bytes: Bytes,
    /// Counted, whether or not `bytes` was taken.
    len: usize,
    outbox: Arc<Outbox>,
}

impl Queued {
    /// The frame's bytes, without copying them; they still count until
    /// `self` drops.
    pub(crate) fn take(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let n = self.len;
        self.outbox.queued.fetch_sub(n, Ordering::AcqRel);
        self.outbox.totals.queued.fetch_sub(n, Ordering::AcqRel);
        self.outbox.progress.notify_waiters();
        self.outbox.totals.drained.notify_waiters();
    }
}

impl Outbox {
    pub(crate) fn new(cap: usize, totals: Arc<Totals>) -> Arc<Outbox> {
        Arc::new(Outbox {
            queued: AtomicUsize::new(0),
            unhandled: AtomicUsize::new(0),
            progress: Notify::new(),
            cap,
            totals,
        })
    }

    /// Counts a frame for the writer.
    pub(crate) fn queue(self: &Arc<Self>, bytes: Bytes) -> Queued {
        let n = bytes.len();
        let mine = self.queued.fetch_add(n, Ordering::AcqRel) + n;
        let all = self.totals.queued.fetch_add(n, Ordering::AcqRel) + n;
        self.totals.peak_per_peer.fetch_max(mine, Ordering::AcqRel);
        self.totals.peak.fetch_max(all, Ordering::AcqRel);
        Queued {
            len: bytes.len(),
            bytes,
            outbox: self.clone(),
        }
    }

    /// Bytes queued to this peer.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The driver handled one frame the reader passed on.
    pub(crate) fn handled(&self) {
        // Saturating: a frame handled after the peer's outbox was replaced
        // must not wrap.
        let _ = self
            .unhandled
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.progress.notify_waiters();
    }

    fn has_room(&self) -> bool {
        self.queued() < self.cap
            && self.totals.queued() < self.totals.cap
            && self.unhandled.load(Ordering::Acquire) < MAX_UNHANDLED_FRAMES
    }

    /// Waits until one more frame of this peer may be read, then counts it
    /// as unhandled. Waits for as long as its writer (or, for the total,
    /// any writer) makes no progress; the reader is aborted with the
    /// connection.
    pub(crate) async fn room(&self) {
        loop {
            // Created before the check, so no wake-up in between is lost.
            let mine = self.progress.notified();
            let any = self.totals.drained.notified();
            if self.has_room() {
                self.unhandled.fetch_add(1, Ordering::AcqRel);
                return;
            }
            tokio::select! {
                () = mine => {}
                () = any => {}
                // Belt and braces against a missed wake-up.
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    async fn gets_room(o: &Outbox) -> bool {
        tokio::time::timeout(Duration::from_millis(300), o.room())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_full_queue_stops_reading_until_the_writer_drains() {
        let totals = Totals::new(1 << 30);
        let o = Outbox::new(100, totals.clone());
        assert!(gets_room(&o).await);
        o.handled();
        let a = o.queue(frame(60));
        let b = o.queue(frame(60));
        assert_eq!(o.queued(), 120);
        assert!(!gets_room(&o).await, "over the cap: no read");
        drop(a);
        assert_eq!(o.queued(), 60);
        assert!(gets_room(&o).await, "drained below the cap: read again");
        drop(b);
        assert_eq!((o.queued(), totals.queued()), (0, 0));
        let seen = totals.snapshot(100);
        assert_eq!(
            (seen.peak, seen.peak_per_peer),
            (120, 120),
            "peaks outlive drains"
        );
    }

    #[tokio::test]
    async fn the_process_total_stops_every_peer() {
        let totals = Totals::new(100);
        let busy = Outbox::new(1000, totals.clone());
        let idle = Outbox::new(1000, totals.clone());
        let q = busy.queue(frame(150));
        assert!(!gets_room(&idle).await, "total over its cap");
        drop(q);
        assert!(gets_room(&idle).await);
    }

    #[tokio::test]
    async fn frames_not_yet_handled_are_bounded() {
        let o = Outbox::new(1000, Totals::new(1000));
        for _ in 0..MAX_UNHANDLED_FRAMES {
            assert!(gets_room(&o).await);
        }
        assert!(!gets_room(&o).await);
        o.handled();
        assert!(gets_room(&o).await);
    }

    /// A wake-up from a writer on another task reaches a waiting reader
    /// at once, not after the fallback sleep.
    #[tokio::test]
    async fn a_waiting_reader_wakes_when_a_frame_is_written() {
        let o = Outbox::new(10, Totals::new(1000));
        let q = o.queue(frame(20));
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(q);
        });
        let t = std::time::Instant::now();
        assert!(gets_room(&o).await);
        assert!(t.elapsed() < Duration::from_millis(90), "{:?}", t.elapsed());
        writer.await.unwrap();
    }
}
