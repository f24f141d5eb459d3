//! The messages actors send one another, and the handles they pass around.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Addr, Message, Recipient};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::actors::agent::AgentActor;
use crate::bus::Outbox;
use crate::cluster::{Link, NodeId};
use crate::domain::{Presence, Priority, Role};

use crate::error::{AppError, ErrorCode};
use crate::protocol::client::{AgentRequest, CustomerRequest, SessionRequest};
use crate::protocol::server::{QueueItem, ServerEvent};

pub type SocketId = Uuid;

/// Who is on the other end of a socket, from their verified token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
    pub name: Arc<str>,
    /// The queue priority a host website signed into a customer's token.
    pub priority: Option<crate::domain::Priority>,
    /// The team a host website signed into a customer's token, by name.
    #[serde(default)]
    pub team: Option<Arc<str>>,
    /// Where the caller connected from, for the allowances per address.
    pub address: Option<std::net::IpAddr>,
    /// A partner's organisation; `None` for everyone else.
    #[serde(default)]
    pub partner_org_id: Option<Uuid>,
}

/// One open socket, as other actors see it.
#[derive(Clone)]
pub struct SocketHandle {
    pub id: SocketId,
    pub caller: Caller,
    pub outbox: Outbox,
}

impl SocketHandle {
    pub fn push(&self, event: &ServerEvent) {
        self.outbox.send(event.frame(None));
    }
}

/// Who made a request: a caller, through one of their sockets or over HTTP.
#[derive(Clone)]
pub struct Origin {
    pub caller: Caller,
    pub socket: Option<SocketHandle>,
}

impl Origin {
    pub fn socket(socket: SocketHandle) -> Self {
        Origin { caller: socket.caller.clone(), socket: Some(socket) }
    }

    pub fn http(caller: Caller) -> Self {
        Origin { caller, socket: None }
    }

    pub fn socket_id(&self) -> Option<SocketId> {
        self.socket.as_ref().map(|socket| socket.id)
    }
}

pub type HttpAnswer = Result<ServerEvent, AppError>;

enum ReplyTo {
    /// A frame on the socket, carrying the request's `ref`.
    Socket { reference: Option<String>, outbox: Outbox, waiting: Option<Arc<AtomicUsize>> },
    /// The HTTP handler waiting for the outcome.
    Http(oneshot::Sender<HttpAnswer>),
    /// A reply waiting on another node (`Link::expect`), for a request that came from there.
    Remote { node: NodeId, call: u64, link: Link },
}

/// The one answer owed to a request. Dropping it unanswered answers with an
/// error, so no request goes without a reply.
pub struct Reply {
    to: Option<ReplyTo>,
}

impl Reply {
    pub fn new(reference: Option<String>, outbox: Outbox) -> Self {
        Reply { to: Some(ReplyTo::Socket { reference, outbox, waiting: None }) }
    }

    /// A reply counted in `waiting` (a socket's unanswered requests) until it is sent.
    pub fn counted(reference: Option<String>, outbox: Outbox, waiting: Arc<AtomicUsize>) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Reply { to: Some(ReplyTo::Socket { reference, outbox, waiting: Some(waiting) }) }
    }

    /// A reply nobody waits for (a request the server makes on a client's behalf).
    pub fn unanswered() -> Self {
        Reply { to: None }
    }

    /// A reply for an HTTP handler, and the receiver it awaits.
    pub fn http() -> (Self, oneshot::Receiver<HttpAnswer>) {
        let (sender, receiver) = oneshot::channel();
        (Reply { to: Some(ReplyTo::Http(sender)) }, receiver)
    }

    /// The reply to a request another node passed on; the answer goes back there.
    pub fn remote(node: NodeId, call: u64, link: Link) -> Self {
        Reply { to: Some(ReplyTo::Remote { node, call, link }) }
    }

    /// Passes the reply on to node `to`: it is kept here until `to` answers
    /// (or is gone), and `to` answers the call this returns.
    pub fn pass_to(mut self, to: &NodeId, link: &Link) -> (NodeId, u64) {
        if let Some(ReplyTo::Remote { node, call, .. }) = &self.to {
            let passed = (node.clone(), *call);
            // Answered where it came from; nothing is owed here.
            self.to = None;
            return passed;
        }
        let call = link.expect(to, move |answer| match answer {
            Ok(value) => match serde_json::from_value::<ServerEvent>(value) {
                Ok(event) => self.send(&event),
                Err(error) => self.fail(&AppError::internal(error)),
            },
            Err(error) => self.fail(&error),
        });
        (link.node().clone(), call)
    }

    fn deliver(&mut self, answer: HttpAnswer) {
        match self.to.take() {
            Some(ReplyTo::Remote { node, call, link }) => {
                let answer = answer.and_then(|event| serde_json::to_value(event).map_err(AppError::internal));
                link.answer(&node, call, answer);
            }
            Some(ReplyTo::Socket { reference, outbox, waiting }) => {
                let event = answer.unwrap_or_else(|error| ServerEvent::error(&error));
                outbox.send(event.frame(reference.as_deref()));
                if let Some(waiting) = waiting {
                    waiting.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Some(ReplyTo::Http(sender)) => {
                let _ = sender.send(answer);
            }
            None => {}
        }
    }

    pub fn send(mut self, event: &ServerEvent) {
        self.deliver(Ok(event.clone()));
    }

    pub fn fail(mut self, error: &AppError) {
        self.deliver(Err(error.clone()));
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.to.is_some() {
            self.deliver(Err(AppError::new(ErrorCode::Internal, "the request could not be completed; try again")));
        }
    }
}

// ---- sockets → registry ----

#[derive(Message)]
#[rtype(result = "()")]
pub struct FromCustomer {
    pub socket: SocketHandle,
    pub reply: Reply,
    pub request: CustomerRequest,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct FromAgent {
    pub socket: SocketHandle,
    pub reply: Reply,
    pub request: AgentRequest,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct FromPartner {
    pub socket: SocketHandle,
    pub reply: Reply,
    pub request: crate::protocol::client::PartnerRequest,
}

/// An event for every open socket of a partner organisation's members (on every node):
/// they were invited into a chat, or removed from one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ToPartnerOrg {
    pub partner_org_id: Uuid,
    pub event: ServerEvent,
}

/// Asked before a WebSocket upgrade: may this account open one more socket?
/// An admitted socket counts until its `SocketSlot` is dropped. The answer
/// says whether it was counted across nodes too.
#[derive(Message)]
#[rtype(result = "Result<bool, AppError>")]
pub struct AdmitSocket {
    pub user_id: Uuid,
}

/// One admitted socket's place in its account's count. It lives as long as
/// the connection (not just its actor), so a closed client that has not let
/// go of its connection still counts, and every way out gives it back.
pub struct SocketSlot {
    pub user_id: Uuid,
    /// Counted across nodes as well as here.
    pub shared: bool,
    pub registry: Recipient<ReleaseSocketSlot>,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.registry.do_send(ReleaseSocketSlot { user_id: self.user_id, shared: self.shared });
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseSocketSlot {
    pub user_id: Uuid,
    pub shared: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketClosed {
    pub socket_id: SocketId,
    pub caller: Caller,
    pub sessions: Vec<Uuid>,
}

/// Closes every socket (with a close frame) before shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAllSockets;

/// A socket opened on this node; other nodes may send it frames.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterSocket(pub SocketHandle, pub Recipient<crate::bus::Outbound>);

/// How many session and agent actors are in memory.
#[derive(Message)]
#[rtype(result = "LiveCounts")]
pub struct LiveActors;

#[derive(Debug, Clone, Copy, actix::MessageResponse)]
pub struct LiveCounts {
    pub sessions: usize,
    pub agents: usize,
}

/// This node in a cluster.
#[derive(Message)]
#[rtype(result = "Option<NodeView>")]
pub struct ThisNode;

#[derive(Debug, Clone, actix::MessageResponse)]
pub struct NodeView {
    pub node: String,
    /// Runs the queue and the agents.
    pub leader: bool,
    /// Hears the other nodes.
    pub link_up: bool,
    /// The last renewal of its leases reached Redis.
    pub leases_held: bool,
}

/// An admin changed an agent's account: the live agent, if any, follows.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct AgentProfileChanged {
    pub agent_id: Uuid,
    pub name: Option<String>,
    pub max_concurrent: Option<i32>,
}

/// Closes every socket of one user, whose account was disabled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSocketsOf(pub Uuid);

// ---- anything → a session, routed by the registry ----

/// Mail for the session actor of `session_id`, on whichever node runs it.
/// With `wake`, the actor is started if nobody runs it; without, the mail
/// only matters to a live actor and is dropped otherwise.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ToSession {
    pub session_id: Uuid,
    pub wake: bool,
    pub mail: SessionMail,
}

/// Everything that is routed to a session's actor.
pub enum SessionMail {
    Command(SessionCommand),
    Detach(Detach),
    AgentAssigned(AgentAssigned),
    AttachAgentSocket(AttachAgentSocket),
    QueuePositionChanged(QueuePositionChanged),
    Requeued(Requeued),
    CloseIfAbandoned(CloseIfAbandoned),
    Reattach(Reattach),
    OfferOffline(OfferOffline),
}

/// Everything that is routed to an agent's actor, on the node that runs the agents.
pub enum AgentMail {
    Join(AgentJoin),
    SetStatus(AgentSetStatus),
    SocketGone(AgentSocketGone),
    ProfileChanged(AgentProfileChanged),
    Welcomed(AssignmentWelcomed),
    Assign(AssignSession),
}

macro_rules! mail_variants {
    ($mail:ident { $($variant:ident($message:ty)),+ $(,)? }) => {
        $(impl From<$message> for $mail {
            fn from(message: $message) -> Self {
                $mail::$variant(message)
            }
        })+

        impl $mail {
            pub fn deliver<A>(self, to: &Addr<A>)
            where
                A: actix::Actor<Context = actix::Context<A>> $(+ actix::Handler<$message>)+,
            {
                match self {
                    $($mail::$variant(message) => to.do_send(message)),+
                }
            }
        }
    };
}

mail_variants!(SessionMail {
    Command(SessionCommand),
    Detach(Detach),
    AgentAssigned(AgentAssigned),
    AttachAgentSocket(AttachAgentSocket),
    QueuePositionChanged(QueuePositionChanged),
    Requeued(Requeued),
    CloseIfAbandoned(CloseIfAbandoned),
    Reattach(Reattach),
    OfferOffline(OfferOffline),
});

mail_variants!(AgentMail {
    Join(AgentJoin),
    SetStatus(AgentSetStatus),
    SocketGone(AgentSocketGone),
    ProfileChanged(AgentProfileChanged),
    Welcomed(AssignmentWelcomed),
    Assign(AssignSession),
});

impl SessionMail {
    /// Answers the request this mail carries, if any, with `error`.
    pub fn refuse(self, error: &AppError) {
        match self {
            SessionMail::Command(command) => command.reply.fail(error),
            SessionMail::AgentAssigned(AgentAssigned { pickup: Some((_, reply)), .. }) => reply.fail(error),
            _ => {}
        }
    }
}

impl AgentMail {
    pub fn refuse(self, error: &AppError) {
        match self {
            AgentMail::Join(AgentJoin { reply, .. }) | AgentMail::SetStatus(AgentSetStatus { reply, .. }) => {
                reply.fail(error)
            }
            AgentMail::Assign(AssignSession { pickup: Some((_, reply)), .. }) => reply.fail(error),
            _ => {}
        }
    }
}

/// A socket that was attached to a retiring actor, handed to its successor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reattach(pub SocketHandle);

#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionCommand {
    pub origin: Origin,
    pub reply: Reply,
    pub request: SessionRequest,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach {
    pub socket_id: SocketId,
}

/// The queue gave the session to an agent; `sockets` are that agent's open sockets.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentAssigned {
    pub agent_id: Uuid,
    pub agent_name: String,
    pub sockets: Vec<SocketHandle>,
    pub pickup: Option<(SocketId, Reply)>,
    /// Dropped once the agent's sockets have the session (or it failed).
    pub welcomed: Welcomed,
}

/// Tells the agent's actor that one assignment has reached its sockets, so
/// it sends the next: the agent gets `session:assigned` in the queue's
/// order. Sent when dropped, so every path out of the welcome sends it once.
pub struct Welcomed {
    pub session_id: Uuid,
    pub agent: Option<WelcomeTo>,
}

/// The agent's actor, here or on the node that runs the agents.
pub enum WelcomeTo {
    Local(Recipient<AssignmentWelcomed>),
    Remote { node: NodeId, agent_id: Uuid, link: Link },
}

impl Drop for Welcomed {
    fn drop(&mut self) {
        match self.agent.take() {
            Some(WelcomeTo::Local(agent)) => agent.do_send(AssignmentWelcomed(self.session_id)),
            Some(WelcomeTo::Remote { node, agent_id, link }) => link.send(
                &node,
                crate::cluster::mail::Mail::Agent {
                    agent_id,
                    mail: crate::cluster::mail::AgentWire::Welcomed { session_id: self.session_id },
                },
            ),
            None => {}
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AssignmentWelcomed(pub Uuid);

/// An assigned agent opened another socket: send it the session and keep it in step.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachAgentSocket {
    pub agent_id: Uuid,
    pub socket: SocketHandle,
}

/// The session's place in the queue changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueuePositionChanged {
    pub position: usize,
}

/// The session went back to the queue because its agent left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Requeued {
    pub position: usize,
}

/// Nobody can answer the waiting customer now: offer them the offline form.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OfferOffline {
    pub reason: crate::protocol::server::OfflineReason,
}

/// Closes the session if its customer has been gone too long.
#[derive(Message, Default)]
#[rtype(result = "()")]
pub struct CloseIfAbandoned;

/// The registry has forgotten this actor; it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// At shutdown: answered once everything sent before it was handled, so the
/// messages a session had received are on their way to the writer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Quiesce;

/// Another node runs this session now: the actor stops at once, and its
/// sockets close so their clients find the session where it is.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Superseded;

/// The session's lease lapsed and was taken back: is this actor still the
/// session's owner in PostgreSQL? If not, it makes way (`Superseded`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckOwnership;

/// The sockets on this node are gone (it died, or lost its link).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct DropSocketsOn(pub NodeId);

/// A session actor stopped; the registry forgets it if it still maps to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionStopped {
    pub session_id: Uuid,
    pub addr: Addr<crate::actors::session::SessionActor>,
}

/// A session actor with nothing to do asks to be retired.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionIdle {
    pub session_id: Uuid,
    pub addr: Addr<crate::actors::session::SessionActor>,
}

// ---- anything → an agent, routed by the registry ----

#[derive(Message)]
#[rtype(result = "()")]
pub struct ToAgent {
    pub agent_id: Uuid,
    pub mail: AgentMail,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentJoin {
    pub socket: SocketHandle,
    pub reply: Reply,
    pub max_concurrent: Option<i32>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentSetStatus {
    pub socket: SocketHandle,
    pub reply: Reply,
    pub status: Presence,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentSocketGone {
    pub socket_id: SocketId,
}

/// The queue assigned a session to this agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AssignSession {
    pub session_id: Uuid,
    pub pickup: Option<(SocketId, Reply)>,
}

/// The session is no longer this agent's.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseSession {
    pub session_id: Uuid,
    pub reason: &'static str,
}

/// A queue board frame for the agent's sockets: a change for all of them,
/// or the whole board for one socket that just joined.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueBoard {
    pub frame: crate::protocol::server::Frame,
    pub to: Option<SocketId>,
}

// ---- → the queue ----

/// Send the whole board to one socket of an agent, through the agent's
/// actor, so the changes that follow reach that socket after it. From then
/// on the agent gets every change until they have no socket left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendBoard {
    pub agent_id: Uuid,
    pub agent: actix::Addr<crate::actors::agent::AgentActor>,
    pub socket_id: SocketId,
}

#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<usize, AppError>")]
pub struct Enqueue {
    pub session_id: Uuid,
    pub priority: Priority,
    pub reason: Option<String>,
    pub customer_name: String,
    pub preview: Option<String>,
    /// The team the chat is routed to.
    #[serde(default)]
    pub team: Option<Uuid>,
}

/// The customer left a message and an address: the chat waits in the queue
/// as an offline request, for an agent to pick up (never given out automatically).
#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<(), AppError>")]
pub struct LeaveOffline {
    pub session_id: Uuid,
    pub priority: Priority,
    pub customer_name: String,
    /// The customer's message, for the board.
    pub preview: String,
    pub team: Option<Uuid>,
    pub email: String,
}

/// An admin changed the teams or who is in them: the queue reads them again.
#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
pub struct TeamsChanged;

/// Where a waiting session is now, if it is waiting.
#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Option<usize>")]
pub struct PositionOf(pub Uuid);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Pickup {
    pub agent_id: Uuid,
    pub session_id: Uuid,
    pub socket_id: SocketId,
    pub reply: Reply,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub enum TransferOutcome {
    Queued { position: usize },
    Reassigned { agent_id: Uuid },
}

#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<TransferOutcome, AppError>")]
pub struct TransferSession {
    pub session_id: Uuid,
    pub customer_name: String,
    pub from_agent: Uuid,
    pub to_agent: Option<Uuid>,
    /// Back in the queue for this team (its agents first).
    #[serde(default)]
    pub to_team: Option<Uuid>,
    pub priority: Priority,
    pub reason: Option<String>,
    /// The agent left the customer unanswered: the chat keeps its first
    /// place in line (ahead of newer chats) and the agent hears `no_reply`.
    #[serde(default)]
    pub unanswered: bool,
}

/// The session closed; the queue forgets it and frees its agent.
#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub session_id: Uuid,
    pub agent_id: Option<Uuid>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentPresence {
    pub agent_id: Uuid,
    pub addr: Addr<AgentActor>,
    pub name: String,
    pub presence: Presence,
    pub max_concurrent: usize,
}

/// The agent's grace period ran out: their sessions go back to the queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentGone {
    pub agent_id: Uuid,
}

#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "Result<Vec<QueueItem>, AppError>")]
pub struct QueueSnapshot;

/// Agents with open sessions after a restart: the registry starts their
/// actors so that their grace period runs even if they never come back.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EnsureAgents(pub Vec<Uuid>);

/// A waiting session's priority changed: it moves in the queue.
#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
pub struct Reprioritize {
    pub session_id: Uuid,
    pub priority: Priority,
}

/// The customer wrote while waiting: the board shows the latest words.
#[derive(Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
pub struct Preview {
    pub session_id: Uuid,
    pub text: String,
}

/// A request for the queue, on whichever node runs it.
pub struct ToQueue<M>(pub M);

impl<M: QueueRequest> Message for ToQueue<M> {
    type Result = M::Result;
}

/// What may be asked of the queue from any node.
pub trait QueueRequest:
    Message<Result: Send + serde::Serialize + serde::de::DeserializeOwned> + Send + 'static
{
    /// The request as it travels to the node that runs the queue.
    fn to_wire(self, link: &Link, to: &NodeId) -> crate::cluster::mail::QueueWire;
    /// The answer when the queue cannot be reached.
    fn unanswered(error: &AppError) -> Self::Result;
    /// Refuses the request itself (and any reply it carries).
    fn refuse(self, error: &AppError) -> Self::Result
    where
        Self: Sized,
    {
        Self::unanswered(error)
    }
}
