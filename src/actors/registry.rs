//! The SessionRegistry routes: it maps session and agent ids to their actors
//! (starting them on demand), sends every inbound request to the actor that
//! owns it, and keeps the list of open sockets for shutdown. It holds no chat
//! state of its own.

use std::collections::HashMap;

use actix::prelude::*;
use chrono::Utc;
use uuid::Uuid;

use crate::error::{AppError, ErrorCode};

use crate::actors::agent::AgentActor;
use crate::actors::messages::*;
use crate::actors::queue::QueueActor;
use crate::actors::session::{NewChat, SessionActor};
use crate::actors::Services;
use crate::db::{self, queries};
use crate::domain::Role;
use crate::protocol::client::{AgentRequest, CustomerRequest};
use crate::rate_limits::Action;

/// At most this many sessions are examined per abandonment sweep.
const ABANDON_SWEEP_BATCH: i64 = 500;

pub struct SessionRegistry {
    services: Services,
    queue: Addr<QueueActor>,
    sessions: HashMap<Uuid, Addr<SessionActor>>,
    agents: HashMap<Uuid, Addr<AgentActor>>,
    /// Sockets admitted per account and not yet closed.
    sockets_per_user: HashMap<Uuid, usize>,
    sockets: HashMap<SocketId, SocketHandle>,
}

impl SessionRegistry {
    pub fn new(services: Services, queue: Addr<QueueActor>) -> Self {
        SessionRegistry {
            services,
            queue,
            sessions: HashMap::new(),
            agents: HashMap::new(),
            sockets: HashMap::new(),
            sockets_per_user: HashMap::new(),
        }
    }

    fn session(&mut self, session_id: Uuid, ctx: &mut Context<Self>) -> Addr<SessionActor> {
        if let Some(addr) = self.sessions.get(&session_id).filter(|addr| addr.connected()) {
            return addr.clone();
        }
        let addr =
            SessionActor::new(session_id, self.services.clone(), ctx.address(), self.queue.clone(), None).start();
        self.sessions.insert(session_id, addr.clone());
        addr
    }

    fn agent(&mut self, agent_id: Uuid, ctx: &mut Context<Self>) -> Addr<AgentActor> {
        if let Some(addr) = self.agents.get(&agent_id).filter(|addr| addr.connected()) {
            return addr.clone();
        }
        let addr = AgentActor::new(agent_id, self.services.clone(), ctx.address(), self.queue.clone()).start();
        self.agents.insert(agent_id, addr.clone());
        addr
    }

    fn start_chat(&mut self, ctx: &mut Context<Self>, chat: NewChat) {
        // Refused before an actor or a row exists for it.
        if let Err(error) = self.services.rate_limits.admit(Action::StartChat, &chat.origin.caller) {
            return chat.reply.fail(&error);
        }
        let mut session_id = Uuid::new_v4();
        while self.sessions.contains_key(&session_id) {
            session_id = Uuid::new_v4();
        }
        let addr =
            SessionActor::new(session_id, self.services.clone(), ctx.address(), self.queue.clone(), Some(chat)).start();
        self.sessions.insert(session_id, addr);
    }

    /// Closes sessions whose customer has been away longer than allowed.
    fn sweep_abandoned(&mut self, ctx: &mut Context<Self>) {
        let pool = self.services.pool.clone();
        let before = Utc::now()
            - chrono::Duration::from_std(self.services.timing.abandon_after).unwrap_or(chrono::Duration::MAX);
        let find = async move {
            db::run(&pool, async |conn| queries::sessions::quiet_since(conn, before, ABANDON_SWEEP_BATCH).await).await
        };
        ctx.spawn(find.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok(quiet) => {
                for session_id in quiet {
                    act.session(session_id, ctx).do_send(CloseIfAbandoned);
                }
            }
            Err(error) => log::warn!("abandonment sweep skipped: {error}"),
        }));
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.services.timing.abandon_sweep, |act, ctx| act.sweep_abandoned(ctx));
    }
}

impl Handler<AdmitSocket> for SessionRegistry {
    type Result = Result<(), AppError>;

    fn handle(&mut self, AdmitSocket { user_id }: AdmitSocket, _: &mut Self::Context) -> Self::Result {
        let open = self.sockets_per_user.entry(user_id).or_default();
        if *open >= self.services.limits.sockets_per_account {
            return Err(AppError::new(
                ErrorCode::TooManySockets,
                format!("this account already has {open} sockets open; close one first"),
            ));
        }
        *open += 1;
        Ok(())
    }
}

impl Handler<ReleaseSocketSlot> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, ReleaseSocketSlot(user_id): ReleaseSocketSlot, _: &mut Self::Context) {
        if let Some(open) = self.sockets_per_user.get_mut(&user_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.sockets_per_user.remove(&user_id);
            }
        }
    }
}

impl Handler<RegisterSocket> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, RegisterSocket(socket): RegisterSocket, _: &mut Self::Context) {
        self.sockets.insert(socket.id, socket);
    }
}

impl Handler<SocketClosed> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, SocketClosed { socket_id, caller, sessions }: SocketClosed, _: &mut Self::Context) {
        self.sockets.remove(&socket_id);
        for session_id in sessions {
            if let Some(addr) = self.sessions.get(&session_id) {
                addr.do_send(Detach { socket_id });
            }
        }
        if caller.role != Role::Customer {
            if let Some(addr) = self.agents.get(&caller.user_id) {
                addr.do_send(AgentSocketGone { socket_id });
            }
        }
    }
}

impl Handler<FromCustomer> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, FromCustomer { socket, reply, request }: FromCustomer, ctx: &mut Self::Context) {
        match request {
            CustomerRequest::StartChat(request) => {
                self.start_chat(ctx, NewChat { origin: Origin::socket(socket), reply, request })
            }
            CustomerRequest::Session { session_id, request } => {
                self.session(session_id, ctx).do_send(SessionCommand { origin: Origin::socket(socket), reply, request })
            }
        }
    }
}

impl Handler<NewChat> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, chat: NewChat, ctx: &mut Self::Context) {
        self.start_chat(ctx, chat);
    }
}

impl Handler<FromAgent> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, FromAgent { socket, reply, request }: FromAgent, ctx: &mut Self::Context) {
        let agent_id = socket.caller.user_id;
        match request {
            AgentRequest::Join(join) => {
                self.agent(agent_id, ctx).do_send(AgentJoin { socket, reply, max_concurrent: join.max_concurrent })
            }
            AgentRequest::SetStatus(set) => {
                self.agent(agent_id, ctx).do_send(AgentSetStatus { socket, reply, status: set.status.into() })
            }
            AgentRequest::PickupSession { session_id } => {
                self.queue.do_send(Pickup { agent_id, session_id, socket_id: socket.id, reply })
            }
            AgentRequest::Session { session_id, request } => {
                self.session(session_id, ctx).do_send(SessionCommand { origin: Origin::socket(socket), reply, request })
            }
        }
    }
}

impl<M> Handler<ToSession<M>> for SessionRegistry
where
    M: Message<Result = ()> + Send + 'static,
    SessionActor: Handler<M>,
{
    type Result = ();

    fn handle(&mut self, ToSession { session_id, wake, message }: ToSession<M>, ctx: &mut Self::Context) {
        if wake {
            self.session(session_id, ctx).do_send(message);
        } else if let Some(addr) = self.sessions.get(&session_id) {
            addr.do_send(message);
        }
    }
}

impl<M> Handler<ToAgent<M>> for SessionRegistry
where
    M: Message<Result = ()> + Send + 'static,
    AgentActor: Handler<M>,
{
    type Result = ();

    fn handle(&mut self, ToAgent { agent_id, message }: ToAgent<M>, ctx: &mut Self::Context) {
        self.agent(agent_id, ctx).do_send(message);
    }
}

impl Handler<EnsureAgents> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, EnsureAgents(agent_ids): EnsureAgents, ctx: &mut Self::Context) {
        for agent_id in agent_ids {
            self.agent(agent_id, ctx);
        }
    }
}

impl Handler<SessionIdle> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, SessionIdle { session_id, addr }: SessionIdle, _: &mut Self::Context) {
        if self.sessions.get(&session_id) == Some(&addr) {
            self.sessions.remove(&session_id);
            addr.do_send(Retire);
        }
    }
}

impl Handler<SessionStopped> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, SessionStopped { session_id, addr }: SessionStopped, _: &mut Self::Context) {
        if self.sessions.get(&session_id) == Some(&addr) {
            self.sessions.remove(&session_id);
        }
    }
}

impl Handler<CloseAllSockets> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, _: CloseAllSockets, _: &mut Self::Context) {
        for socket in self.sockets.values() {
            socket.outbox.tell(crate::bus::Outbound::Close("the server is restarting".to_owned()));
        }
    }
}

impl Handler<LiveActors> for SessionRegistry {
    type Result = LiveCounts;

    fn handle(&mut self, _: LiveActors, _: &mut Self::Context) -> LiveCounts {
        LiveCounts { sessions: self.sessions.len(), agents: self.agents.len() }
    }
}

impl Handler<AgentProfileChanged> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, changed: AgentProfileChanged, _: &mut Self::Context) {
        // An agent without a live actor reads the new profile when they next join.
        if let Some(agent) = self.agents.get(&changed.agent_id).filter(|addr| addr.connected()) {
            agent.do_send(changed);
        }
    }
}

impl Handler<CloseSocketsOf> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, CloseSocketsOf(user_id): CloseSocketsOf, _: &mut Self::Context) {
        for socket in self.sockets.values().filter(|socket| socket.caller.user_id == user_id) {
            socket.outbox.tell(crate::bus::Outbound::Close("this account was disabled".to_owned()));
        }
    }
}
