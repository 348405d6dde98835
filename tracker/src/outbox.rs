//! How the pure tracker state names sockets it never touches, and the
//! buffer its replies go into: [`SocketId`], [`Outgoing`], [`Outbox`].
//!
//! The socket holder (`server.rs`) serialises and writes what is
//! here; the swarm owner (`hub.rs`) only ever appends to it. A leaf module:
//! it names no other module of the crate, so both can depend on it.

use peerhost_core::signal::{InfoHash, ServerMessage};

/// The tracker's name for one client WebSocket (not to be confused with
/// the core's `ConnId`, a data channel between two peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u64);

/// A message for one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The socket to send to.
    pub to: SocketId,
    /// What to send.
    pub msg: ServerMessage,
}

impl Outgoing {
    /// The protocol's error reply to `to`: the `action` it concerns, a
    /// human-readable reason, and the swarm if there is one.
    pub fn error(to: SocketId, action: &str, why: String, info_hash: Option<InfoHash>) -> Self {
        Outgoing {
            to,
            msg: ServerMessage::Error {
                action: action.to_owned(),
                failure_reason: why,
                info_hash,
            },
        }
    }
}

/// The same message for many sockets, serialised once (a manifest push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// The sockets to send to, in ascending order.
    pub to: Vec<SocketId>,
    /// What to send.
    pub msg: ServerMessage,
}

/// What one input produced. Send order: every [`Outgoing`] in `messages`,
/// then the broadcast. Reuse one `Outbox` per socket task: it keeps its
/// capacity, so handling a message allocates nothing here.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Messages for single sockets, in order.
    pub messages: Vec<Outgoing>,
    /// At most one broadcast per input.
    pub broadcast: Option<Broadcast>,
}

impl Outbox {
    /// Whether nothing is waiting to be sent.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.broadcast.is_none()
    }
}
