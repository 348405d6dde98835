//! What kind of peer a simulated node is: the world gives each node a role
//! from the scenario, and the report counts outcomes per role.

/// What kind of peer a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A visitor who wants the whole site.
    Visitor,
    /// A visitor who holds the site from an earlier visit.
    Returning,
    /// Holds the site; flips a byte in every piece it sends.
    Corrupt,
    /// Claims every piece, then never sends anything after its handshake.
    Silent,
    /// Offers an old, validly signed manifest as if it were newer.
    Replay,
}

impl Role {
    /// Whether the peer is hostile.
    pub fn hostile(self) -> bool {
        matches!(self, Role::Corrupt | Role::Silent | Role::Replay)
    }
}
