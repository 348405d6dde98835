//! Pieces and manifests waiting for their check: a piece's SHA-256
//! against the manifest, a manifest's signature and rules. Both run inline
//! or through the driver (see the module doc of [`client`](super)), and
//! what follows from a verdict (store, deliver, ban) starts here.

use bytes::Bytes;

use super::{Client, Event, HashJob, ManifestSource, Misbehaviour, Output, SignatureJob};
use crate::manifest::{Accepted, ManifestError, SignedManifest};
use crate::piece::{Digest, PieceIndex};
use crate::scheduler::{ConnId, RequestId};
use crate::signal::PeerId;
use crate::time::{Instant, UnixTime};

/// Whose piece is being hashed.
#[derive(Debug, Clone, Copy)]
pub(super) enum HashFor {
    Peer {
        conn: ConnId,
        remote: Option<PeerId>,
    },
    Origin(RequestId),
}

/// A manifest waiting for the driver's signature check.
#[derive(Debug)]
pub(super) struct PendingSignature {
    pub(super) job: u64,
    pub(super) signed: SignedManifest,
    pub(super) source: ManifestSource,
    /// The wall clock when it arrived: the validity window is judged then.
    pub(super) wall: UnixTime,
    /// The tracker id of the peer that sent it, to ban it even if gone.
    pub(super) remote: Option<PeerId>,
}

/// Most manifests waiting for a signature check at once; beyond, manifests
/// from peers are dropped unchecked (as if never sent).
pub const MAX_PENDING_SIGNATURES: usize = 16;

/// A piece waiting for its digest from the driver.
#[derive(Debug)]
pub(super) struct PendingHash {
    pub(super) job: u64,
    pub(super) version: u64,
    pub(super) piece: PieceIndex,
    pub(super) data: Bytes,
    pub(super) from: HashFor,
}

impl Client {
    /// A signed manifest arrived (from the origin, the tracker, storage, a
    /// peer). `wall` is the wall clock, for the validity window.
    ///
    /// With deferred signatures (see the module doc) a manifest for our
    /// site key is not judged yet: the answer is `Ok` and the verdict comes
    /// with [`Input::SignatureChecked`](super::Input::SignatureChecked). The
    /// result is for the caller inside the client (a peer that sent a
    /// forged manifest is banned); drivers learn it from the events.
    pub(super) fn check_manifest(
        &mut self,
        now: Instant,
        wall: UnixTime,
        signed: &SignedManifest,
        source: ManifestSource,
    ) -> Result<(), ManifestError> {
        self.clock.set_local(now, wall);
        let wall = self.clock.judge(now, wall);
        #[cfg(feature = "dalek")]
        if !self.config.deferred_signatures {
            let result = self.guard.accept(signed, wall);
            self.manifest_checked(now, source, &result);
            self.drive(now);
            return result.map(|_| ());
        }
        // The site key first, as inline: another site's manifest is refused
        // without asking for a signature check.
        let expected = *self.guard.site_key();
        let found = signed.manifest().site_key;
        if found != expected {
            let result = Err(ManifestError::WrongSiteKey { expected, found });
            self.manifest_checked(now, source, &result);
            self.drive(now);
            return result.map(|_| ());
        }
        let job = self.next_signature_job;
        self.next_signature_job += 1;
        let remote = match source {
            ManifestSource::Peer(conn) => self.peers.get(&conn).and_then(|p| p.remote),
            _ => None,
        };
        self.signatures.push_back(PendingSignature {
            job,
            signed: signed.clone(),
            source,
            wall,
            remote,
        });
        self.outputs.push_back(Output::VerifySignature {
            job: SignatureJob(job),
            site_key: expected,
            message: Bytes::copy_from_slice(signed.signed_bytes()),
            signature: *signed.signature(),
        });
        Ok(())
    }

    /// Whether the driver checks signatures (see the module doc).
    pub(super) fn defers_signatures(&self) -> bool {
        self.config.deferred_signatures || cfg!(not(feature = "dalek"))
    }

    /// [`Input::Manifest`](super::Input::Manifest): the verdict comes out
    /// as an event.
    pub(super) fn handle_manifest(
        &mut self,
        now: Instant,
        wall: UnixTime,
        signed: &SignedManifest,
        source: ManifestSource,
    ) {
        // Refusals come out as events.
        let _ = self.check_manifest(now, wall, signed, source);
    }

    /// The driver's answer to signature check `job` ([`Output::VerifySignature`]):
    /// whether the signature is valid. Runs every other check of the
    /// manifest; the verdict comes out as an event (an unknown job, already
    /// answered, is ignored). A `false` answer refuses the manifest, and a
    /// peer that sent it is banned.
    pub(super) fn handle_signature(&mut self, now: Instant, job: SignatureJob, valid: bool) {
        let Some(k) = self.signatures.iter().position(|p| p.job == job.0) else {
            return;
        };
        let p = self.signatures.remove(k).expect("found");
        // The job names exactly these bytes, key and signature.
        let result = self.guard.accept_with(&p.signed, p.wall, |_, _, _| valid);
        self.manifest_checked(now, p.source, &result);
        if let (
            ManifestSource::Peer(conn),
            Err(
                e @ (ManifestError::BadSignature
                | ManifestError::WrongSiteKey { .. }
                | ManifestError::Malformed(_)),
            ),
        ) = (p.source, &result)
        {
            // Signed by someone else, or forged: the peer lied (as inline).
            if self.peers.contains_key(&conn) {
                self.ban(conn, Misbehaviour::BadManifest(e.clone()));
            } else if let Some(id) = p.remote {
                // Gone before its manifest was judged: never again.
                self.banned.insert(id);
            }
        }
        self.drive(now);
    }

    /// A manifest was judged: make it current (now or after the page load)
    /// or report the refusal.
    pub(super) fn manifest_checked(
        &mut self,
        now: Instant,
        source: ManifestSource,
        result: &Result<Accepted, ManifestError>,
    ) {
        match result {
            Ok(Accepted::Newer { .. }) => {
                let verified = self.guard.current().expect("just accepted").clone();
                self.outputs
                    .push_back(Output::Event(Event::ManifestAccepted {
                        version: verified.version(),
                        source,
                    }));
                // A page load that already got assets of this version
                // finishes on it (see `drive`); otherwise switch now: open
                // tickets that got nothing yet simply move along.
                if self.site.is_some()
                    && !self.tickets.is_empty()
                    && self.load_delivered
                    && !self.config.max_switch_delay.is_zero()
                {
                    let at = self
                        .pending_switch
                        .as_ref()
                        .map_or(now + self.config.max_switch_delay, |(_, at)| *at);
                    self.pending_switch = Some((verified, at));
                } else {
                    self.pending_switch = None;
                    self.switch_site(now, verified);
                }
            }
            Ok(Accepted::Unchanged) => {}
            Err(error) => {
                self.outputs
                    .push_back(Output::Event(Event::ManifestRefused {
                        source,
                        error: error.clone(),
                    }));
            }
        }
    }

    /// Wall clock extrapolated from the last one the driver gave us.
    pub(super) fn wall_estimate(&self, now: Instant) -> UnixTime {
        self.clock.estimate(now)
    }

    /// Tells the client the wall clock (call when it changes a lot, or
    /// periodically; manifests from the tracker and peers are checked
    /// against it).
    pub(super) fn set_wall_clock(&mut self, now: Instant, wall: UnixTime) {
        self.clock.set_local(now, wall);
    }

    /// The SHA-256 of the bytes of hashing job `job` ([`Output::HashPiece`]).
    /// Unknown jobs (already answered, or of a version the client left)
    /// are ignored.
    pub(super) fn handle_piece_hash(&mut self, now: Instant, job: HashJob, digest: Digest) {
        let Some(k) = self.hashing.iter().position(|h| h.job == job.0) else {
            return;
        };
        let h = self.hashing.remove(k).expect("found");
        let Some(site) = &self.site else { return };
        if site.version() != h.version {
            return;
        }
        let ok = site.map.get(h.piece).is_some_and(|p| p.hash == digest);
        self.piece_checked(now, h.piece, h.data, h.from, ok);
        self.drive(now);
    }

    /// Checks `data` against the manifest, inline or through the driver.
    pub(super) fn verify_piece(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Bytes,
        from: HashFor,
    ) {
        let site = self.site.as_ref().expect("site");
        let Some(p) = site.map.get(piece) else {
            return self.piece_checked(now, piece, data, from, false);
        };
        if data.len() != p.len as usize {
            return self.piece_checked(now, piece, data, from, false);
        }
        if !self.config.deferred_hashing {
            let ok = Digest::of(&data) == p.hash;
            return self.piece_checked(now, piece, data, from, ok);
        }
        let job = self.next_job;
        self.next_job += 1;
        self.hashing.push_back(PendingHash {
            job,
            version: site.version(),
            piece,
            data: data.clone(),
            from,
        });
        self.outputs.push_back(Output::HashPiece {
            job: HashJob(job),
            data,
        });
    }

    /// A piece's hash was checked: store it, or refuse it and blame its sender.
    pub(super) fn piece_checked(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Bytes,
        from: HashFor,
        ok: bool,
    ) {
        let len = data.len() as u64;
        let asset = self
            .site
            .as_ref()
            .and_then(|s| s.map.get(piece))
            .map(|p| p.asset);
        match from {
            HashFor::Peer { conn, remote } => {
                if ok && let Some(asset) = asset {
                    // A copy that lost a race (endgame, or the origin too)
                    // while both were being hashed counts for nothing.
                    if self.store_piece(now, piece, data, Some(conn)) {
                        self.stats.bytes_from_peers += len;
                        self.count_asset(asset, len, 0);
                    }
                } else {
                    self.stats.pieces_rejected += 1;
                    if self.peers.contains_key(&conn) {
                        self.ban(conn, Misbehaviour::BadPiece(piece));
                    } else if let Some(id) = remote {
                        // Gone before its bytes were judged: never again.
                        self.banned.insert(id);
                    }
                }
            }
            HashFor::Origin(request) => {
                if ok && let Some(asset) = asset {
                    if self.store_piece(now, piece, data, None) {
                        self.stats.bytes_from_origin += len;
                        self.count_asset(asset, 0, len);
                    }
                } else {
                    self.stats.pieces_rejected += 1;
                    self.origin_failed(piece);
                }
                self.origin_piece_done(request, (!ok).then_some("bytes do not match the manifest"));
            }
        }
    }

    /// One piece of an origin answer was judged; the request is finished
    /// when the last one is.
    pub(super) fn origin_piece_done(&mut self, request: RequestId, bad: Option<&str>) {
        let Some(site) = &mut self.site else { return };
        let Some(fetch) = site.origin_requests.get_mut(&request) else {
            return;
        };
        if fetch.bad.is_none() {
            fetch.bad = bad.map(str::to_owned);
        }
        fetch.hashing = fetch.hashing.saturating_sub(1);
        if fetch.hashing > 0 {
            return;
        }
        let fetch = site.origin_requests.remove(&request).expect("present");
        site.scheduler.origin_finished(request);
        if let Some(reason) = fetch.bad {
            self.fail_exhausted(&reason);
        }
    }
}
