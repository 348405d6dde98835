//! The latest verified manifest of each site, and who to push it to.
//!
//! A publisher (`peerhost push`) sends a signed manifest; it is kept only if
//! it verifies under the site key it names, is within its validity window,
//! and its version is strictly higher than the one held
//! ([`ManifestGuard`] does all three). Accepted manifests are pushed once
//! to every connection subscribed to that site. State lives in memory: a
//! restarted tracker forgets versions, which is safe because clients keep
//! their own floor and verify every push.
//!
//! The store is bounded (`max_sites`, `max_total_bytes`) but never closed
//! to a new site: expired manifests are dropped on every housekeeping tick
//! and before a publish that would not fit, then the least recently used
//! (published to or subscribed to) sites, until the new one fits. An
//! evicted site forgets its version floor here, which is safe for the same
//! reason a restart is. `allowed_sites` keeps throwaway keys out entirely.
//!
//! Pure like [`crate::swarm`]: time is a parameter, pushes come back as
//! data. The hub (`hub.rs`) owns the one `Manifests`.

use std::collections::{BTreeMap, HashMap, HashSet};

use peerhost_core::manifest::{Accepted, ManifestError, ManifestGuard, SignedManifest, SiteKey};
use peerhost_core::signal::ServerMessage;
use peerhost_core::time::UnixTime;

use crate::config::ManifestConfig;
use crate::metrics::Reason;
use crate::outbox::SocketId;

/// Why a publish or subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestReject {
    /// Manifests are disabled on this tracker.
    #[error("manifest publishing is disabled")]
    Disabled,
    /// The site is not in the allow-list.
    #[error("site is not allowed on this tracker")]
    NotAllowed,
    /// The manifest is malformed, badly signed, expired or not yet valid.
    #[error("manifest refused: {0}")]
    Invalid(ManifestError),
    /// The version is not strictly higher than the one held.
    #[error("manifest version {offered} is not newer than {current}")]
    NotNewer {
        /// The version offered.
        offered: u64,
        /// The version held.
        current: u64,
    },
    /// The manifest, or the store, is over its size cap, or too many sites.
    #[error("manifest store is full")]
    StoreFull,
    /// The connection subscribed to too many sites.
    #[error("too many manifest subscriptions on this connection")]
    TooManySubscriptions,
}

impl ManifestReject {
    /// The metrics label.
    pub fn reason(&self) -> Reason {
        match self {
            ManifestReject::Disabled => Reason::ManifestsDisabled,
            ManifestReject::NotAllowed => Reason::ManifestNotAllowed,
            ManifestReject::Invalid(_) => Reason::ManifestInvalid,
            ManifestReject::NotNewer { .. } => Reason::ManifestRollback,
            ManifestReject::StoreFull => Reason::ManifestStoreFull,
            ManifestReject::TooManySubscriptions => Reason::Subscriptions,
        }
    }
}

/// An accepted publish: the new version and the pushes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The version now current.
    pub version: u64,
    /// Subscribed connections of the site.
    pub push_to: Vec<SocketId>,
    /// The push, the same for every subscriber.
    pub push: ServerMessage,
}

#[derive(Debug)]
struct Stored {
    guard: ManifestGuard,
    bytes: usize,
    /// When it was last published to or subscribed to, in [`Manifests::uses`].
    used: u64,
}

/// Manifests per site and subscriptions per connection.
#[derive(Debug)]
pub struct Manifests {
    cfg: ManifestConfig,
    allowed: Option<HashSet<SiteKey>>,
    sites: HashMap<SiteKey, Stored>,
    /// Every stored site by its `used` stamp, least recently used first.
    lru: BTreeMap<u64, SiteKey>,
    /// Uses so far: the next `used` stamp.
    uses: u64,
    subscribers: HashMap<SiteKey, HashSet<SocketId>>,
    /// Each connection's subscriptions, with the highest version it is
    /// known to have (told in `have_version`, or pushed to it): nothing at
    /// or below it is pushed to that connection again.
    by_socket: HashMap<SocketId, Vec<(SiteKey, u64)>>,
    total_bytes: usize,
}

impl Manifests {
    /// An empty store under `cfg` (invalid allow-list entries are ignored;
    /// [`crate::config::Config::validate`] refuses them earlier).
    pub fn new(cfg: ManifestConfig) -> Self {
        let allowed = (!cfg.allowed_sites.is_empty()).then(|| {
            cfg.allowed_sites
                .iter()
                .filter_map(|k| k.parse().ok())
                .collect()
        });
        Manifests {
            cfg,
            allowed,
            sites: HashMap::new(),
            lru: BTreeMap::new(),
            uses: 0,
            subscribers: HashMap::new(),
            by_socket: HashMap::new(),
            total_bytes: 0,
        }
    }

    /// Sites with a stored manifest.
    pub fn site_count(&self) -> usize {
        self.sites.len()
    }

    /// Subscriptions over all connections.
    pub fn subscription_count(&self) -> usize {
        self.by_socket.values().map(Vec::len).sum()
    }

    /// The version held for `site`, if any.
    pub fn version(&self, site: &SiteKey) -> Option<u64> {
        self.sites
            .get(site)
            .and_then(|s| s.guard.current())
            .map(|m| m.version())
    }

    /// Marks `site` (if stored) as just used.
    fn touch(&mut self, site: &SiteKey) {
        if let Some(s) = self.sites.get_mut(site) {
            self.lru.remove(&s.used);
            self.uses += 1;
            s.used = self.uses;
            self.lru.insert(s.used, *site);
        }
    }

    fn evict(&mut self, site: &SiteKey) {
        if let Some(s) = self.sites.remove(site) {
            self.lru.remove(&s.used);
            self.total_bytes -= s.bytes;
        }
    }

    /// Drops every manifest past its `expires_at`: no client would accept it.
    pub fn clean(&mut self, now: UnixTime) {
        let expired: Vec<SiteKey> = self
            .sites
            .iter()
            .filter(|(_, s)| {
                s.guard
                    .current()
                    .is_none_or(|m| m.manifest().expires_at <= now.0)
            })
            .map(|(k, _)| *k)
            .collect();
        for site in &expired {
            self.evict(site);
        }
    }

    /// Whether a manifest of `bytes` for `site` fits without evicting.
    fn fits(&self, site: &SiteKey, bytes: usize) -> bool {
        let old = self.sites.get(site).map_or(0, |s| s.bytes);
        let is_new = !self.sites.contains_key(site);
        !(is_new && self.sites.len() >= self.cfg.max_sites)
            && self.total_bytes - old + bytes <= self.cfg.max_total_bytes
    }

    /// Makes room for `bytes` of `site`: expired manifests first, then the
    /// least recently used other sites.
    fn make_room(&mut self, now: UnixTime, site: &SiteKey, bytes: usize) {
        if self.fits(site, bytes) {
            return;
        }
        self.clean(now);
        while !self.fits(site, bytes) {
            let victim = self.lru.values().find(|k| *k != site).copied();
            let Some(victim) = victim else { break };
            self.evict(&victim);
        }
    }

    /// Verifies and stores a published manifest (the wire encoding).
    pub fn publish(&mut self, now: UnixTime, bytes: &[u8]) -> Result<Published, ManifestReject> {
        if !self.cfg.enabled {
            return Err(ManifestReject::Disabled);
        }
        if bytes.len() > self.cfg.max_manifest_bytes {
            return Err(ManifestReject::StoreFull);
        }
        let signed = SignedManifest::from_bytes(bytes).map_err(ManifestReject::Invalid)?;
        let site = signed.manifest().site_key;
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&site)) {
            return Err(ManifestReject::NotAllowed);
        }
        if bytes.len() > self.cfg.max_total_bytes || self.cfg.max_sites == 0 {
            return Err(ManifestReject::StoreFull);
        }
        let mut guard = self
            .sites
            .get(&site)
            .map_or_else(|| ManifestGuard::new(site), |s| s.guard.clone());
        let current = guard.current().map_or(0, |m| m.version());
        let offered = signed.manifest().version;
        match guard.accept(&signed, now) {
            Ok(Accepted::Newer { .. }) => {}
            Ok(Accepted::Unchanged) => {
                return Err(ManifestReject::NotNewer { offered, current });
            }
            Err(ManifestError::Rollback { .. } | ManifestError::Equivocation { .. }) => {
                return Err(ManifestReject::NotNewer { offered, current });
            }
            Err(e) => return Err(ManifestReject::Invalid(e)),
        }
        // Only a manifest that verified may push others out.
        self.make_room(now, &site, bytes.len());
        self.evict(&site);
        self.total_bytes += bytes.len();
        self.sites.insert(
            site,
            Stored {
                guard,
                bytes: bytes.len(),
                used: 0,
            },
        );
        self.touch(&site);
        // Only to subscribers that do not have this version yet (after an
        // eviction a lower version can be published again).
        let mut push_to: Vec<SocketId> = Vec::new();
        for socket in self.subscribers.get(&site).into_iter().flatten() {
            if let Some((_, known)) = self
                .by_socket
                .get_mut(socket)
                .and_then(|held| held.iter_mut().find(|(k, _)| *k == site))
                && *known < offered
            {
                *known = offered;
                push_to.push(*socket);
            }
        }
        push_to.sort();
        Ok(Published {
            version: offered,
            push_to,
            push: ServerMessage::ManifestPush {
                site_key: site,
                version: offered,
                manifest: bytes.to_vec(),
            },
        })
    }

    /// Subscribes `socket` to `site`; returns the push to send now if the
    /// tracker holds an unexpired version above `have_version`.
    pub fn subscribe(
        &mut self,
        now: UnixTime,
        socket: SocketId,
        site: SiteKey,
        have_version: u64,
    ) -> Result<Option<ServerMessage>, ManifestReject> {
        if !self.cfg.enabled {
            return Err(ManifestReject::Disabled);
        }
        let held = self.by_socket.entry(socket).or_default();
        let i = match held.iter().position(|(k, _)| *k == site) {
            Some(i) => i,
            None => {
                if held.len() >= self.cfg.max_subscriptions_per_connection {
                    if held.is_empty() {
                        self.by_socket.remove(&socket);
                    }
                    return Err(ManifestReject::TooManySubscriptions);
                }
                held.push((site, 0));
                self.subscribers.entry(site).or_default().insert(socket);
                held.len() - 1
            }
        };
        let known = &mut held[i].1;
        *known = (*known).max(have_version);
        let known = *known;
        self.touch(&site);
        let Some(current) = self.sites.get(&site).and_then(|s| s.guard.current()) else {
            return Ok(None);
        };
        let m = current.manifest();
        // A repeated subscribe is answered with nothing new: a connection
        // gets each version at most once, however often it asks.
        if m.version <= known || m.expires_at <= now.0 {
            return Ok(None);
        }
        if let Some(held) = self.by_socket.get_mut(&socket) {
            held[i].1 = m.version;
        }
        Ok(Some(ServerMessage::ManifestPush {
            site_key: site,
            version: m.version,
            manifest: current.signed().to_bytes(),
        }))
    }

    /// The connection closed: forget its subscriptions.
    pub fn disconnect(&mut self, socket: SocketId) {
        for (site, _) in self.by_socket.remove(&socket).unwrap_or_default() {
            if let Some(subs) = self.subscribers.get_mut(&site) {
                subs.remove(&socket);
                if subs.is_empty() {
                    self.subscribers.remove(&site);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerhost_core::manifest::{Asset, Manifest, SiteSecret};

    const NOW: u64 = 1_800_000_000;

    fn signed(seed: u8, version: u64) -> Vec<u8> {
        let secret = SiteSecret::from_seed([seed; 32]);
        Manifest {
            site_key: secret.site_key(),
            version,
            issued_at: NOW - 10,
            expires_at: NOW + 3600,
            flags: 0,
            assets: vec![Asset::from_bytes("/a.txt", "text/plain", 16384, b"hi")],
        }
        .sign(&secret)
        .unwrap()
        .to_bytes()
    }

    fn site(seed: u8) -> SiteKey {
        SiteSecret::from_seed([seed; 32]).site_key()
    }

    #[test]
    fn publish_pushes_to_subscribers_of_that_site_only() {
        let mut m = Manifests::new(ManifestConfig::default());
        assert_eq!(
            m.subscribe(UnixTime(NOW), SocketId(1), site(7), 0),
            Ok(None)
        );
        m.subscribe(UnixTime(NOW), SocketId(2), site(7), 0).unwrap();
        m.subscribe(UnixTime(NOW), SocketId(3), site(8), 0).unwrap();
        let p = m.publish(UnixTime(NOW), &signed(7, 1)).unwrap();
        assert_eq!(p.version, 1);
        assert_eq!(p.push_to, vec![SocketId(1), SocketId(2)]);
        // A late subscriber gets it at once, one that has it does not.
        assert!(matches!(
            m.subscribe(UnixTime(NOW), SocketId(4), site(7), 0),
            Ok(Some(ServerMessage::ManifestPush { version: 1, .. }))
        ));
        assert_eq!(
            m.subscribe(UnixTime(NOW), SocketId(5), site(7), 1),
            Ok(None)
        );
        m.disconnect(SocketId(1));
        let p = m.publish(UnixTime(NOW), &signed(7, 2)).unwrap();
        assert_eq!(p.push_to, vec![SocketId(2), SocketId(4), SocketId(5)]);
    }

    #[test]
    fn rollback_and_replay_are_refused() {
        let mut m = Manifests::new(ManifestConfig::default());
        m.publish(UnixTime(NOW), &signed(7, 5)).unwrap();
        assert_eq!(
            m.publish(UnixTime(NOW), &signed(7, 4)),
            Err(ManifestReject::NotNewer {
                offered: 4,
                current: 5
            })
        );
        assert!(matches!(
            m.publish(UnixTime(NOW), &signed(7, 5)),
            Err(ManifestReject::NotNewer { .. })
        ));
        assert_eq!(m.version(&site(7)), Some(5));
    }

    #[test]
    fn invalid_and_expired_are_refused() {
        let mut m = Manifests::new(ManifestConfig::default());
        let mut bad = signed(7, 1);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            m.publish(UnixTime(NOW), &bad),
            Err(ManifestReject::Invalid(ManifestError::BadSignature))
        ));
        assert!(matches!(
            m.publish(UnixTime(NOW + 7200), &signed(7, 1)),
            Err(ManifestReject::Invalid(ManifestError::Expired { .. }))
        ));
        assert!(matches!(
            m.publish(UnixTime(NOW), b"junk"),
            Err(ManifestReject::Invalid(_))
        ));
        assert_eq!(m.site_count(), 0);
    }

    fn signed_until(seed: u8, version: u64, expires_at: u64) -> Vec<u8> {
        let secret = SiteSecret::from_seed([seed; 32]);
        Manifest {
            site_key: secret.site_key(),
            version,
            issued_at: NOW - 10,
            expires_at,
            flags: 0,
            assets: vec![Asset::from_bytes("/a.txt", "text/plain", 16384, b"hi")],
        }
        .sign(&secret)
        .unwrap()
        .to_bytes()
    }

    #[test]
    fn a_full_store_evicts_expired_then_least_recently_used() {
        let mut m = Manifests::new(ManifestConfig {
            max_sites: 3,
            ..ManifestConfig::default()
        });
        // Throwaway keys fill the store; one of them expires soon.
        m.publish(UnixTime(NOW), &signed(1, 1)).unwrap();
        m.publish(UnixTime(NOW), &signed_until(2, 1, NOW + 60))
            .unwrap();
        m.publish(UnixTime(NOW), &signed(3, 1)).unwrap();
        // A subscription keeps site 1 in use.
        m.subscribe(UnixTime(NOW), SocketId(1), site(1), 0).unwrap();
        let later = UnixTime(NOW + 120);
        // A new site still publishes: the expired one goes first...
        m.publish(later, &signed(4, 1)).unwrap();
        assert_eq!(m.version(&site(2)), None);
        // ...then the least recently used (3: site 1 was subscribed since).
        m.publish(later, &signed(5, 1)).unwrap();
        assert_eq!(m.version(&site(3)), None);
        assert_eq!(m.version(&site(1)), Some(1));
        assert_eq!(m.site_count(), 3);
        // The byte cap evicts the same way.
        let one = signed(6, 1).len();
        let mut m = Manifests::new(ManifestConfig {
            max_total_bytes: 2 * one,
            ..ManifestConfig::default()
        });
        for seed in 6..=9 {
            m.publish(UnixTime(NOW), &signed(seed, 1)).unwrap();
        }
        assert_eq!(m.site_count(), 2);
        assert_eq!(m.version(&site(9)), Some(1));
        assert_eq!(m.version(&site(8)), Some(1));
    }

    #[test]
    fn housekeeping_drops_expired_manifests() {
        let mut m = Manifests::new(ManifestConfig::default());
        m.publish(UnixTime(NOW), &signed_until(1, 1, NOW + 60))
            .unwrap();
        m.publish(UnixTime(NOW), &signed(2, 1)).unwrap();
        m.clean(UnixTime(NOW + 60));
        assert_eq!(m.site_count(), 1);
        assert_eq!(m.version(&site(2)), Some(1));
        // The byte count went down with it: a store of exactly one fits again.
        assert_eq!(m.total_bytes, signed(2, 1).len());
    }

    #[test]
    fn a_connection_gets_each_version_once() {
        let mut m = Manifests::new(ManifestConfig::default());
        m.publish(UnixTime(NOW), &signed(7, 3)).unwrap();
        assert!(matches!(
            m.subscribe(UnixTime(NOW), SocketId(1), site(7), 0),
            Ok(Some(ServerMessage::ManifestPush { version: 3, .. }))
        ));
        // Asking again, even claiming to have nothing, pushes nothing new.
        for have in [0, 1, 3] {
            assert_eq!(
                m.subscribe(UnixTime(NOW), SocketId(1), site(7), have),
                Ok(None)
            );
        }
        // A subscriber that said it has version 5 is not sent 4.
        m.subscribe(UnixTime(NOW), SocketId(2), site(7), 5).unwrap();
        let p = m.publish(UnixTime(NOW), &signed(7, 4)).unwrap();
        assert_eq!(p.push_to, vec![SocketId(1)]);
        assert_eq!(
            m.subscribe(UnixTime(NOW), SocketId(1), site(7), 0),
            Ok(None)
        );
        // After an eviction the same version may be published again; it
        // is not pushed twice.
        m.evict(&site(7));
        let p = m.publish(UnixTime(NOW), &signed(7, 4)).unwrap();
        assert!(p.push_to.is_empty());
    }

    #[test]
    fn limits_hold() {
        let mut m = Manifests::new(ManifestConfig {
            max_sites: 1,
            max_subscriptions_per_connection: 1,
            allowed_sites: vec![site(7).to_string(), site(8).to_string()],
            ..ManifestConfig::default()
        });
        m.publish(UnixTime(NOW), &signed(7, 1)).unwrap();
        assert_eq!(
            m.publish(UnixTime(NOW), &signed(9, 1)),
            Err(ManifestReject::NotAllowed)
        );
        m.subscribe(UnixTime(NOW), SocketId(1), site(8), 0).unwrap();
        assert_eq!(
            m.subscribe(UnixTime(NOW), SocketId(1), site(7), 0),
            Err(ManifestReject::TooManySubscriptions)
        );
        assert_eq!(m.subscription_count(), 1);
    }
}
