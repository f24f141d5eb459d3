//! Several nodes as one service, through Redis (`REDIS_URL`).
//!
//! - `link`: the node's one subscription and one ordered publisher: mail
//!   between nodes, frames for sockets on other nodes, and the answers to
//!   requests made across nodes.
//! - `leases`: who runs what. A session's actor runs on the node holding its
//!   lease; the queue and the agents' actors run on the node holding the
//!   leader lease. Leases expire unless renewed, and a node that stops
//!   renewing (killed, cut off) loses them to the next node that asks.
//! - `mail`: what travels between nodes.
//!
//! Without `REDIS_URL` there is no cluster: one node runs everything.

pub mod leases;
pub mod link;
pub mod mail;

use std::sync::Arc;
use std::time::Duration;

pub use leases::Leases;
pub use link::Link;

/// A node's name, unique among the nodes of one service.
pub type NodeId = Arc<str>;

/// What the registry needs to act as one node of several.
#[derive(Clone)]
pub struct Cluster {
    pub link: Link,
    pub leases: Leases,
    /// How long a lease lasts unless renewed.
    pub lease: Duration,
}

impl Cluster {
    pub fn node(&self) -> &NodeId {
        self.link.node()
    }
}
