//! Binary-string ids and the swarm id.
//!
//! `info_hash`, `peer_id`, `to_peer_id` and `offer_id` are 20 raw bytes
//! written one Latin-1 character per byte (see the module doc of
//! [`crate::signal`]); `Debug` and `Display` print hex. Both codecs read and
//! write them through [`parse_binary_id`] and `to_binary_string`.

use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::manifest::SiteKey;

macro_rules! binary_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }

            /// The 20-character binary string (each byte one char U+0000–U+00FF).
            pub fn to_binary_string(&self) -> String {
                self.0.iter().map(|&b| char::from(b)).collect()
            }

            /// Parses a binary string: exactly 20 chars, each ≤ U+00FF.
            pub fn from_binary_str(s: &str) -> Option<Self> {
                parse_binary_id(s).map($name)
            }

            /// Lower-case hex, 40 characters.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex(&self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }

        impl From<[u8; 20]> for $name {
            fn from(b: [u8; 20]) -> Self {
                $name(b)
            }
        }
    };
}

binary_id!(
    /// A peer's self-chosen 20-byte id; the tracker binds it to the
    /// connection that first announced it in a swarm.
    PeerId
);
binary_id!(
    /// A swarm id; in peerhost always [`swarm_id`] of a site and version.
    InfoHash
);
binary_id!(
    /// A random 20-byte id the offerer gives each offer, to match the answer.
    OfferId
);

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes of a binary string: exactly 20 chars, each ≤ U+00FF.
pub(super) fn parse_binary_id(s: &str) -> Option<[u8; 20]> {
    // A valid id is at most 40 UTF-8 bytes; refuse early without scanning.
    if s.len() > 40 || s.len() < 20 {
        return None;
    }
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// One swarm per site and manifest version.
///
/// The first 20 bytes of `SHA-256("peerhost/1 swarm" ‖ site key ‖ version
/// as u64 big-endian)`. Versions of one site never share a swarm, and the
/// id reveals neither URLs nor, without the site key, the site.
pub fn swarm_id(site: &SiteKey, version: u64) -> InfoHash {
    let digest = Sha256::new()
        .chain_update(b"peerhost/1 swarm")
        .chain_update(site.as_bytes())
        .chain_update(version.to_be_bytes())
        .finalize();
    let mut id = [0u8; 20];
    id.copy_from_slice(&digest[..20]);
    InfoHash(id)
}
