//! Delivery of frames to sockets.
//!
//! Actors never hold a socket's type, only an [`Outbox`]. Today every outbox
//! is a socket actor on this node; a Redis-backed outbox for sockets on other
//! nodes plugs in here without the actors changing.

pub mod wire;

use actix::{Message, Recipient};
use uuid::Uuid;

use crate::protocol::server::Frame;

/// What a socket actor is told.
#[derive(Message, Debug, Clone)]
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
}

/// Where frames for one socket go.
#[derive(Clone)]
pub struct Outbox {
    local: Recipient<Outbound>,
}

impl Outbox {
    pub fn local(recipient: Recipient<Outbound>) -> Self {
        Outbox { local: recipient }
    }

    pub fn send(&self, frame: Frame) {
        self.local.do_send(Outbound::Frame(frame));
    }

    pub fn tell(&self, outbound: Outbound) {
        self.local.do_send(outbound);
    }
}
