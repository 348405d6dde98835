//! The address plan of a simulated internet: documentation ranges only.
//!
//! `203.0.113.0/24` is the public internet, cut into sixteen blocks of
//! sixteen addresses; a topology owns one block: its public address
//! (`.16b+1`, on the outer namespace's `lo`), one WAN address per home
//! router (`.16b+2+i`) and a black hole (`.16b+15`). A block is claimed
//! by adding its public address to `lo`: the kernel refuses a second
//! claim, so topologies built at once — test threads of one binary, or two
//! test binaries in the same namespace — never share addresses or
//! interface names, without a lock. Home LANs are private to a router and its home: home `i` gets a
//! `/28` of `192.0.2.0/24` (even `i`) or `198.51.100.0/24` (odd `i`), so
//! no two homes of one topology share a LAN address either.

use std::net::Ipv4Addr;

/// Blocks of sixteen addresses in `203.0.113.0/24`.
pub const BLOCKS: u8 = 16;
/// Homes per topology: every WAN address fits in its block.
pub const MAX_HOMES: usize = 13;

/// The public address of block `block`: the origin, tracker, TURN server
/// and seeders bind to it.
pub fn public_ip(block: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, block * 16 + 1)
}

/// The WAN address of home `home`'s router in block `block`.
pub fn wan_ip(block: u8, home: usize) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, block * 16 + 2 + home as u8)
}

/// An address of block `block` where every packet is silently dropped (a
/// `blackhole` route): a server that never answers, not one that refuses.
pub fn black_hole_ip(block: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, block * 16 + 15)
}

/// Home `home`'s LAN: (router's address, home's address, prefix length).
pub fn lan(home: usize) -> (Ipv4Addr, Ipv4Addr, u8) {
    let base = 16 * (home / 2) as u8;
    let [a, b, c] = if home.is_multiple_of(2) {
        [192, 0, 2]
    } else {
        [198, 51, 100]
    };
    (
        Ipv4Addr::new(a, b, c, base + 1),
        Ipv4Addr::new(a, b, c, base + 2),
        28,
    )
}

/// The outer-namespace end of home `home`'s WAN link in block `block`
/// (at most 15 characters).
pub fn wan_link_name(block: u8, home: usize) -> String {
    format!("phnat{block}w{home}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_is_in_a_documentation_range_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..BLOCKS {
            assert!(seen.insert(public_ip(b)));
            assert!(seen.insert(black_hole_ip(b)));
            for h in 0..MAX_HOMES {
                assert!(seen.insert(wan_ip(b, h)), "block {b} home {h}");
                assert_eq!(wan_ip(b, h).octets()[..3], [203, 0, 113]);
                assert!(wan_link_name(b, h).len() <= 15);
            }
        }
        let lans: std::collections::HashSet<_> = (0..MAX_HOMES).map(|h| lan(h).1).collect();
        assert_eq!(lans.len(), MAX_HOMES);
    }
}
