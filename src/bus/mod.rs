//! Delivery of frames to sockets.
//!
//! Actors never hold a socket's type, only an [`Outbox`]: a socket actor on
//! this node, or a socket on another node, reached through the cluster link.

pub mod wire;

use std::collections::HashSet;
use std::sync::Arc;

use actix::{Message, Recipient};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actors::messages::SocketId;
use crate::cluster::{Link, NodeId};
use crate::protocol::server::Frame;

/// What a socket actor is told.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "()")]
pub enum Outbound {
    /// A text frame to write.
    Frame(Frame),
    /// The socket now receives a session's events; it reports the session when it closes.
    Attached(Uuid),
    /// The socket no longer receives a session's events.
    Detached(Uuid),
    /// Close the socket with this reason.
    Close(String),
    /// This node lost its link to the others: a socket that follows a
    /// session run elsewhere (any but these), or an agent's socket when the
    /// agents are run elsewhere, may have missed frames; it closes so its
    /// client reconnects and resumes where it was.
    #[serde(skip)]
    LinkLost { sessions_here: Arc<HashSet<Uuid>>, agents_here: bool },
}

#[derive(Clone)]
enum Target {
    Local(Recipient<Outbound>),
    Remote {
        node: NodeId,
        socket: SocketId,
        link: Link,
    },
    /// A socket that was on this node and is closed.
    Gone,
}

/// Where frames for one socket go.
#[derive(Clone)]
pub struct Outbox {
    target: Target,
}

impl Outbox {
    pub fn local(recipient: Recipient<Outbound>) -> Self {
        Outbox { target: Target::Local(recipient) }
    }

    pub fn remote(node: NodeId, socket: SocketId, link: Link) -> Self {
        Outbox { target: Target::Remote { node, socket, link } }
    }

    pub fn gone() -> Self {
        Outbox { target: Target::Gone }
    }

    /// The node the socket is on, when it is not this one.
    pub fn remote_node(&self) -> Option<&NodeId> {
        match &self.target {
            Target::Remote { node, .. } => Some(node),
            _ => None,
        }
    }

    pub fn send(&self, frame: Frame) {
        self.tell(Outbound::Frame(frame));
    }

    pub fn tell(&self, outbound: Outbound) {
        match &self.target {
            Target::Local(recipient) => recipient.do_send(outbound),
            Target::Remote { node, socket, link } => {
                link.send(node, crate::cluster::mail::Mail::Outbound { socket: *socket, outbound })
            }
            Target::Gone => {}
        }
    }
}
