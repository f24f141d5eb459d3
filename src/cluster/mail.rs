//! What travels between nodes, and how the actors' messages become it.
//!
//! Actor messages hold handles that only mean something on their node: a
//! socket's actor, a reply an HTTP handler awaits. On the way out a socket
//! becomes its id and node, and a reply is kept on its node (`Link::expect`)
//! and travels as a call number; on the way in they become an outbox and a
//! reply that send to that node.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::link::Answer;
use super::{Link, NodeId};
use crate::actors::messages::*;
use crate::bus::{Outbound, Outbox};
use crate::domain::Presence;
use crate::error::AppError;
use crate::protocol::client::SessionRequest;

#[derive(Serialize, Deserialize)]
pub enum Mail {
    /// For a socket on the receiving node.
    Outbound { socket: SocketId, outbound: Outbound },
    /// The answer to a call the receiving node made.
    Answer { call: u64, answer: Answer },
    /// For a session's actor, which the receiving node runs (or should).
    Session { session_id: Uuid, wake: bool, hops: u8, mail: SessionWire },
    /// For an agent's actor, on the node that runs the agents.
    Agent { agent_id: Uuid, mail: AgentWire },
    /// For the queue; `call` is answered with the outcome.
    Queue { call: Option<u64>, request: QueueWire },
    /// To every node: close this account's sockets.
    CloseSocketsOf(Uuid),
    /// To every node: an event for a partner organisation's sockets.
    ToPartnerOrg { partner_org_id: Uuid, event: crate::protocol::server::ServerEvent },
    /// To every node: the sockets of this node are gone (it died, or started afresh).
    NodeGone(NodeId),
}

impl Mail {
    /// The calls of node `ours` this mail carries: if it is lost, they fail.
    /// (A reply passed on from another node is that node's to fail.)
    pub fn calls(&self, ours: &NodeId) -> Vec<u64> {
        let reply_call = |reply: &WireReply| if reply.node == *ours { vec![reply.call] } else { Vec::new() };
        match self {
            Mail::Session { mail: SessionWire::Command { reply, .. }, .. }
            | Mail::Agent { mail: AgentWire::Join { reply, .. } | AgentWire::SetStatus { reply, .. }, .. }
            | Mail::Queue { request: QueueWire::Pickup { reply, .. }, .. } => reply_call(reply),
            Mail::Session { mail: SessionWire::AgentAssigned { pickup: Some((_, reply)), .. }, .. } => {
                reply_call(reply)
            }
            Mail::Queue { call: Some(call), .. } => vec![*call],
            _ => Vec::new(),
        }
    }
}

/// A socket, by node and id.
#[derive(Serialize, Deserialize)]
pub struct WireSocket {
    id: SocketId,
    node: NodeId,
    caller: Caller,
}

/// A reply kept on `node` under `call`.
#[derive(Serialize, Deserialize)]
pub struct WireReply {
    node: NodeId,
    call: u64,
}

impl Link {
    pub fn export_socket(&self, socket: &SocketHandle) -> WireSocket {
        let node = socket.outbox.remote_node().unwrap_or(self.node()).clone();
        WireSocket { id: socket.id, node, caller: socket.caller.clone() }
    }

    pub fn import_socket(&self, WireSocket { id, node, caller }: WireSocket) -> SocketHandle {
        let outbox = if node == *self.node() {
            self.local_socket(id).map_or_else(Outbox::gone, Outbox::local)
        } else {
            Outbox::remote(node, id, self.clone())
        };
        SocketHandle { id, caller, outbox }
    }

    pub fn export_reply(&self, reply: Reply, to: &NodeId) -> WireReply {
        let (node, call) = reply.pass_to(to, self);
        WireReply { node, call }
    }

    pub fn import_reply(&self, WireReply { node, call }: WireReply) -> Reply {
        Reply::remote(node, call, self.clone())
    }
}

#[derive(Serialize, Deserialize)]
pub enum SessionWire {
    Command {
        caller: Caller,
        socket: Option<WireSocket>,
        reply: WireReply,
        request: SessionRequest,
    },
    Detach {
        socket_id: SocketId,
    },
    AgentAssigned {
        agent_id: Uuid,
        agent_name: String,
        sockets: Vec<WireSocket>,
        pickup: Option<(SocketId, WireReply)>,
        /// The node whose agent actor waits to hear the welcome reached the sockets.
        welcome: Option<NodeId>,
    },
    AttachAgentSocket {
        agent_id: Uuid,
        socket: WireSocket,
    },
    QueuePositionChanged {
        position: usize,
    },
    Requeued {
        position: usize,
    },
    CloseIfAbandoned,
    Reattach(WireSocket),
    OfferOffline {
        reason: crate::protocol::server::OfflineReason,
    },
}

impl SessionMail {
    pub fn export(self, link: &Link, to: &NodeId) -> SessionWire {
        match self {
            SessionMail::Command(SessionCommand { origin, reply, request }) => SessionWire::Command {
                caller: origin.caller,
                socket: origin.socket.as_ref().map(|socket| link.export_socket(socket)),
                reply: link.export_reply(reply, to),
                request,
            },
            SessionMail::Detach(Detach { socket_id }) => SessionWire::Detach { socket_id },
            SessionMail::AgentAssigned(AgentAssigned { agent_id, agent_name, sockets, pickup, mut welcomed }) => {
                let welcome = match welcomed.agent.take() {
                    Some(WelcomeTo::Local(_)) => Some(link.node().clone()),
                    Some(WelcomeTo::Remote { node, .. }) => Some(node),
                    None => None,
                };
                SessionWire::AgentAssigned {
                    agent_id,
                    agent_name,
                    sockets: sockets.iter().map(|socket| link.export_socket(socket)).collect(),
                    pickup: pickup.map(|(socket, reply)| (socket, link.export_reply(reply, to))),
                    welcome,
                }
            }
            SessionMail::AttachAgentSocket(AttachAgentSocket { agent_id, socket }) => {
                SessionWire::AttachAgentSocket { agent_id, socket: link.export_socket(&socket) }
            }
            SessionMail::QueuePositionChanged(QueuePositionChanged { position }) => {
                SessionWire::QueuePositionChanged { position }
            }
            SessionMail::Requeued(Requeued { position }) => SessionWire::Requeued { position },
            SessionMail::CloseIfAbandoned(_) => SessionWire::CloseIfAbandoned,
            SessionMail::Reattach(Reattach(socket)) => SessionWire::Reattach(link.export_socket(&socket)),
            SessionMail::OfferOffline(OfferOffline { reason }) => SessionWire::OfferOffline { reason },
        }
    }
}

impl SessionWire {
    pub fn import(self, session_id: Uuid, link: &Link) -> SessionMail {
        match self {
            SessionWire::Command { caller, socket, reply, request } => SessionMail::Command(SessionCommand {
                origin: Origin { caller, socket: socket.map(|socket| link.import_socket(socket)) },
                reply: link.import_reply(reply),
                request,
            }),
            SessionWire::Detach { socket_id } => Detach { socket_id }.into(),
            SessionWire::AgentAssigned { agent_id, agent_name, sockets, pickup, welcome } => AgentAssigned {
                agent_id,
                agent_name,
                sockets: sockets.into_iter().map(|socket| link.import_socket(socket)).collect(),
                pickup: pickup.map(|(socket, reply)| (socket, link.import_reply(reply))),
                welcomed: Welcomed {
                    session_id,
                    agent: welcome.map(|node| WelcomeTo::Remote { node, agent_id, link: link.clone() }),
                },
            }
            .into(),
            SessionWire::AttachAgentSocket { agent_id, socket } => {
                AttachAgentSocket { agent_id, socket: link.import_socket(socket) }.into()
            }
            SessionWire::QueuePositionChanged { position } => QueuePositionChanged { position }.into(),
            SessionWire::Requeued { position } => Requeued { position }.into(),
            SessionWire::CloseIfAbandoned => CloseIfAbandoned.into(),
            SessionWire::Reattach(socket) => Reattach(link.import_socket(socket)).into(),
            SessionWire::OfferOffline { reason } => OfferOffline { reason }.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub enum AgentWire {
    Join { socket: WireSocket, reply: WireReply, max_concurrent: Option<i32> },
    SetStatus { socket: WireSocket, reply: WireReply, status: Presence },
    SocketGone { socket_id: SocketId },
    ProfileChanged { name: Option<String>, max_concurrent: Option<i32> },
    Welcomed { session_id: Uuid },
}

impl AgentMail {
    /// The mail as it travels; an assignment never does (the queue and the
    /// agents run on one node), so it has none.
    pub fn export(self, link: &Link, to: &NodeId) -> Option<AgentWire> {
        Some(match self {
            AgentMail::Join(AgentJoin { socket, reply, max_concurrent }) => AgentWire::Join {
                socket: link.export_socket(&socket),
                reply: link.export_reply(reply, to),
                max_concurrent,
            },
            AgentMail::SetStatus(AgentSetStatus { socket, reply, status }) => AgentWire::SetStatus {
                socket: link.export_socket(&socket),
                reply: link.export_reply(reply, to),
                status,
            },
            AgentMail::SocketGone(AgentSocketGone { socket_id }) => AgentWire::SocketGone { socket_id },
            AgentMail::ProfileChanged(AgentProfileChanged { name, max_concurrent, .. }) => {
                AgentWire::ProfileChanged { name, max_concurrent }
            }
            AgentMail::Welcomed(AssignmentWelcomed(session_id)) => AgentWire::Welcomed { session_id },
            AgentMail::Assign(assign) => {
                AgentMail::Assign(assign).refuse(&AppError::cluster_unavailable("the agents moved to another node"));
                return None;
            }
        })
    }
}

impl AgentWire {
    pub fn import(self, agent_id: Uuid, link: &Link) -> AgentMail {
        match self {
            AgentWire::Join { socket, reply, max_concurrent } => {
                AgentJoin { socket: link.import_socket(socket), reply: link.import_reply(reply), max_concurrent }.into()
            }
            AgentWire::SetStatus { socket, reply, status } => {
                AgentSetStatus { socket: link.import_socket(socket), reply: link.import_reply(reply), status }.into()
            }
            AgentWire::SocketGone { socket_id } => AgentSocketGone { socket_id }.into(),
            AgentWire::ProfileChanged { name, max_concurrent } => {
                AgentProfileChanged { agent_id, name, max_concurrent }.into()
            }
            AgentWire::Welcomed { session_id } => AssignmentWelcomed(session_id).into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub enum QueueWire {
    Enqueue(Enqueue),
    PositionOf(PositionOf),
    Pickup { agent_id: Uuid, session_id: Uuid, socket_id: SocketId, reply: WireReply },
    Transfer(TransferSession),
    SessionEnded(SessionEnded),
    Reprioritize(Reprioritize),
    Preview(Preview),
    Snapshot(QueueSnapshot),
    TeamsChanged(TeamsChanged),
    LeaveOffline(LeaveOffline),
}

macro_rules! plain_queue_requests {
    ($($message:ident => $variant:ident, $refused:expr;)+) => {
        $(impl QueueRequest for $message {
            fn to_wire(self, _: &Link, _: &NodeId) -> QueueWire {
                QueueWire::$variant(self)
            }

            fn unanswered(error: &AppError) -> Self::Result {
                #[allow(clippy::redundant_closure_call)]
                ($refused)(error)
            }
        })+
    };
}

plain_queue_requests! {
    Enqueue => Enqueue, |error: &AppError| Err(error.clone());
    PositionOf => PositionOf, |_| None;
    TransferSession => Transfer, |error: &AppError| Err(error.clone());
    SessionEnded => SessionEnded, |_| ();
    Reprioritize => Reprioritize, |_| ();
    Preview => Preview, |_| ();
    TeamsChanged => TeamsChanged, |_| ();
    LeaveOffline => LeaveOffline, |error: &AppError| Err(error.clone());
    QueueSnapshot => Snapshot, |error: &AppError| Err(error.clone());
}

impl QueueRequest for Pickup {
    fn to_wire(self, link: &Link, to: &NodeId) -> QueueWire {
        let Pickup { agent_id, session_id, socket_id, reply } = self;
        QueueWire::Pickup { agent_id, session_id, socket_id, reply: link.export_reply(reply, to) }
    }

    fn unanswered(_: &AppError) {}

    fn refuse(self, error: &AppError) {
        self.reply.fail(error);
    }
}
