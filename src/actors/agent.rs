//! One actor per signed-in human agent: presence, capacity, the sessions the
//! agent has, and the agent's open sockets (tabs), all kept in step. When the
//! last socket closes the agent keeps their sessions for a grace period; after
//! it, the queue takes the sessions back.

use std::collections::{BTreeSet, HashMap, HashSet};

use actix::prelude::*;
use uuid::Uuid;

use crate::actors::messages::*;
use crate::actors::queue::QueueActor;
use crate::actors::registry::SessionRegistry;
use crate::actors::Services;
use crate::db::{self, queries};
use crate::domain::{Presence, Role};
use crate::error::{AppError, ErrorCode};
use crate::protocol::server::{AgentView, ServerEvent};

enum Profile {
    Loading,
    /// `max_concurrent` is what the agent takes now: at most `limit`, the
    /// capacity an admin gave the account, lower if the agent asked at join.
    Ready {
        name: String,
        max_concurrent: i32,
        limit: i32,
    },
    /// The account cannot take chats (a customer, or disabled).
    Refused(AppError),
    /// The database could not be read: tried again at the next join.
    Unavailable(AppError),
}

/// How soon a presence write that failed is tried again.
const PRESENCE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct AgentActor {
    id: Uuid,
    services: Services,
    registry: Addr<SessionRegistry>,
    queue: Addr<QueueActor>,
    profile: Profile,
    /// What the agent chose; while no socket is open the queue sees them offline.
    presence: Presence,
    sockets: HashMap<SocketId, SocketHandle>,
    /// Sockets that joined and have not had the whole board yet: changes
    /// before it are in it, so they do not get those.
    awaiting_board: HashSet<SocketId>,
    sessions: BTreeSet<Uuid>,
    grace_timer: Option<SpawnHandle>,
    presence_retry: Option<SpawnHandle>,
    /// Assignments waiting for the one before them to reach the sockets.
    assignments: std::collections::VecDeque<(Uuid, Option<(SocketId, Reply)>)>,
    welcoming: Option<Uuid>,
}

impl AgentActor {
    pub fn new(id: Uuid, services: Services, registry: Addr<SessionRegistry>, queue: Addr<QueueActor>) -> Self {
        AgentActor {
            id,
            services,
            registry,
            queue,
            profile: Profile::Loading,
            presence: Presence::Online,
            sockets: HashMap::new(),
            awaiting_board: HashSet::new(),
            sessions: BTreeSet::new(),
            grace_timer: None,
            presence_retry: None,
            assignments: std::collections::VecDeque::new(),
            welcoming: None,
        }
    }

    fn name(&self) -> String {
        match &self.profile {
            Profile::Ready { name, .. } => name.clone(),
            _ => "Agent".to_owned(),
        }
    }

    fn max_concurrent(&self) -> i32 {
        match &self.profile {
            Profile::Ready { max_concurrent, .. } => *max_concurrent,
            _ => 0,
        }
    }

    fn effective_presence(&self) -> Presence {
        if self.sockets.is_empty() {
            Presence::Offline
        } else {
            self.presence
        }
    }

    fn view(&self) -> AgentView {
        AgentView {
            agent_id: self.id,
            name: self.name(),
            status: self.effective_presence(),
            max_concurrent: self.max_concurrent(),
            active_sessions: self.sessions.iter().copied().collect(),
        }
    }

    fn report(&self, ctx: &Context<Self>) {
        self.queue.do_send(AgentPresence {
            agent_id: self.id,
            addr: ctx.address(),
            name: self.name(),
            presence: self.effective_presence(),
            max_concurrent: usize::try_from(self.max_concurrent()).unwrap_or(0),
        });
    }

    fn push(&self, event: &ServerEvent, except: Option<SocketId>) {
        let frame = event.frame(None);
        for (id, socket) in &self.sockets {
            if Some(*id) != except {
                socket.outbox.send(frame.clone());
            }
        }
    }

    /// Stores the presence others see, then runs `then`. `wait`, not
    /// `spawn`: two changes in a row must reach the database in the order
    /// they were made.
    fn save_presence_then<F>(&self, ctx: &mut Context<Self>, then: F)
    where
        F: FnOnce(&mut Self, &mut Context<Self>) + 'static,
    {
        let pool = self.services.pool.clone();
        let (id, presence) = (self.id, self.effective_presence());
        let write =
            async move { db::run(&pool, async |conn| queries::users::set_presence(conn, id, presence).await).await };
        ctx.wait(write.into_actor(self).map(move |outcome, act, ctx| {
            if let Err(error) = outcome {
                // Others would see a stale presence until the next change: keep trying.
                log::warn!("agent {id}: presence not saved, trying again: {error}");
                if act.presence_retry.is_none() {
                    act.presence_retry = Some(ctx.run_later(PRESENCE_RETRY, |act, ctx| {
                        act.presence_retry = None;
                        act.save_presence(ctx);
                    }));
                }
            }
            then(act, ctx)
        }));
    }

    fn save_presence(&self, ctx: &mut Context<Self>) {
        self.save_presence_then(ctx, |_, _| {});
    }

    fn start_grace(&mut self, ctx: &mut Context<Self>) {
        if self.grace_timer.is_some() {
            return;
        }
        let grace = self.services.timing.agent_grace;
        self.grace_timer = Some(ctx.run_later(grace, |act, ctx| {
            act.grace_timer = None;
            if act.sockets.is_empty() {
                log::info!("agent {} did not come back: their sessions return to the queue", act.id);
                act.save_presence(ctx);
                act.queue.do_send(AgentGone { agent_id: act.id });
            }
        }));
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.load_profile(ctx, |_, _| {});
    }
}

impl AgentActor {
    /// Reads the agent's account and sessions, then runs `then`.
    fn load_profile<F>(&mut self, ctx: &mut Context<Self>, then: F)
    where
        F: FnOnce(&mut Self, &mut Context<Self>) + 'static,
    {
        let pool = self.services.pool.clone();
        let id = self.id;
        let load = async move {
            db::run(&pool, async |conn| {
                let user = queries::users::find(conn, id).await?;
                let sessions = queries::sessions::assigned_to(conn, id).await?;
                Ok((user, sessions))
            })
            .await
        };
        ctx.wait(load.into_actor(self).map(|outcome, act, ctx| {
            act.profile = match outcome {
                Ok((Some(user), sessions)) if user.role != Role::Customer && !user.disabled => {
                    act.sessions = sessions.into_iter().collect();
                    let limit = user.max_concurrent_chats;
                    Profile::Ready { name: user.display_name, max_concurrent: limit, limit }
                }
                Ok(_) => Profile::Refused(AppError::new(ErrorCode::Forbidden, "this account cannot take chats")),
                Err(error) => {
                    log::warn!("agent {}: profile not loaded: {error}", act.id);
                    Profile::Unavailable(error)
                }
            };
            if !act.sessions.is_empty() && act.sockets.is_empty() {
                act.start_grace(ctx);
            }
            then(act, ctx)
        }));
    }
}

impl Handler<AgentJoin> for AgentActor {
    type Result = ();

    fn handle(&mut self, join: AgentJoin, ctx: &mut Self::Context) {
        if let Profile::Unavailable(_) = &self.profile {
            // The database was away when this actor started: read the profile again first.
            return self.load_profile(ctx, move |act, ctx| act.join(join, ctx));
        }
        self.join(join, ctx);
    }
}

impl AgentActor {
    fn join(&mut self, AgentJoin { socket, reply, max_concurrent }: AgentJoin, ctx: &mut Context<Self>) {
        if let Profile::Refused(error) | Profile::Unavailable(error) = &self.profile {
            return reply.fail(error);
        }
        if let Some(timer) = self.grace_timer.take() {
            ctx.cancel_future(timer);
        }
        if let (Some(wanted), Profile::Ready { max_concurrent, limit, .. }) = (max_concurrent, &mut self.profile) {
            // The admin's capacity counts; an agent may only take fewer chats.
            if wanted > *limit {
                return reply.fail(&AppError::new(
                    ErrorCode::InvalidPayload,
                    format!("maxConcurrent may be at most {limit}, the capacity an admin set for you"),
                ));
            }
            *max_concurrent = wanted;
        }
        let was_offline = self.sockets.is_empty();
        self.sockets.insert(socket.id, socket.clone());
        if was_offline {
            self.save_presence(ctx);
        }
        reply.send(&ServerEvent::AgentJoined { agent_id: self.id, agent: self.view() });
        // The board first, as it stands before this agent takes anything;
        // every change after it follows it through this actor.
        self.awaiting_board.insert(socket.id);
        self.queue.do_send(SendBoard { agent_id: self.id, agent: ctx.address(), socket_id: socket.id });
        self.report(ctx);
        for session_id in &self.sessions {
            self.registry.do_send(ToSession {
                session_id: *session_id,
                wake: true,
                mail: AttachAgentSocket { agent_id: self.id, socket: socket.clone() }.into(),
            });
        }
    }
}

impl Handler<AgentSetStatus> for AgentActor {
    type Result = ();

    fn handle(&mut self, AgentSetStatus { socket, reply, status }: AgentSetStatus, ctx: &mut Self::Context) {
        if !self.sockets.contains_key(&socket.id) {
            return reply.fail(&AppError::new(ErrorCode::AgentNotJoined, "send agent:join first"));
        }
        self.presence = status;
        // The answer goes out once the new status is stored.
        let event = ServerEvent::AgentStatus { agent_id: self.id, status };
        self.save_presence_then(ctx, move |act, ctx| {
            act.push(&event, Some(socket.id));
            reply.send(&event);
            act.report(ctx);
        });
    }
}

impl Handler<AgentProfileChanged> for AgentActor {
    type Result = ();

    fn handle(&mut self, changed: AgentProfileChanged, ctx: &mut Self::Context) {
        let Profile::Ready { name, max_concurrent, limit } = &mut self.profile else { return };
        if let Some(new_name) = changed.name {
            *name = new_name;
        }
        if let Some(new_limit) = changed.max_concurrent {
            *limit = new_limit;
            *max_concurrent = new_limit;
        }
        self.push(&ServerEvent::AgentUpdated { agent: self.view() }, None);
        self.report(ctx);
    }
}

impl Handler<AgentSocketGone> for AgentActor {
    type Result = ();

    fn handle(&mut self, AgentSocketGone { socket_id }: AgentSocketGone, ctx: &mut Self::Context) {
        self.awaiting_board.remove(&socket_id);
        if self.sockets.remove(&socket_id).is_some() {
            self.sockets_gone(ctx);
        }
    }
}

impl Handler<DropSocketsOn> for AgentActor {
    type Result = ();

    fn handle(&mut self, DropSocketsOn(node): DropSocketsOn, ctx: &mut Self::Context) {
        let before = self.sockets.len();
        self.sockets.retain(|_, socket| socket.outbox.remote_node() != Some(&node));
        if self.sockets.len() < before {
            self.sockets_gone(ctx);
        }
    }
}

impl Handler<Retire> for AgentActor {
    type Result = ();

    /// The agents run on another node now.
    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl AgentActor {
    /// Some of the agent's sockets closed: with none left, the agent is away.
    fn sockets_gone(&mut self, ctx: &mut Context<Self>) {
        if !self.sockets.is_empty() {
            return;
        }
        // Gone from the queue's point of view at once; the sessions stay theirs for the grace period.
        self.report(ctx);
        if self.sessions.is_empty() {
            self.save_presence(ctx);
        } else {
            self.start_grace(ctx);
        }
    }
}

impl Handler<AssignSession> for AgentActor {
    type Result = ();

    fn handle(&mut self, AssignSession { session_id, pickup }: AssignSession, ctx: &mut Self::Context) {
        self.sessions.insert(session_id);
        self.assignments.push_back((session_id, pickup));
        self.next_assignment(ctx);
    }
}

/// How long one assignment may take to reach the agent's sockets before the next goes anyway.
const WELCOME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl AgentActor {
    /// Hands the next assignment to its session once the previous one has
    /// reached the sockets, so `session:assigned` comes in the queue's order.
    fn next_assignment(&mut self, ctx: &mut Context<Self>) {
        if self.welcoming.is_some() {
            return;
        }
        let Some((session_id, pickup)) = self.assignments.pop_front() else { return };
        self.welcoming = Some(session_id);
        self.registry.do_send(ToSession {
            session_id,
            wake: true,
            mail: AgentAssigned {
                agent_id: self.id,
                agent_name: self.name(),
                sockets: self.sockets.values().cloned().collect(),
                pickup,
                welcomed: Welcomed { session_id, agent: Some(WelcomeTo::Local(ctx.address().recipient())) },
            }
            .into(),
        });
        ctx.run_later(WELCOME_TIMEOUT, move |act, ctx| {
            if act.welcoming == Some(session_id) {
                log::warn!("agent {}: session {session_id} took long to open; going on", act.id);
                act.welcoming = None;
                act.next_assignment(ctx);
            }
        });
    }
}

impl Handler<AssignmentWelcomed> for AgentActor {
    type Result = ();

    fn handle(&mut self, AssignmentWelcomed(session_id): AssignmentWelcomed, ctx: &mut Self::Context) {
        if self.welcoming == Some(session_id) {
            self.welcoming = None;
            self.next_assignment(ctx);
        }
    }
}

impl Handler<ReleaseSession> for AgentActor {
    type Result = ();

    fn handle(&mut self, ReleaseSession { session_id, reason }: ReleaseSession, _: &mut Self::Context) {
        if self.sessions.remove(&session_id) {
            self.push(&ServerEvent::SessionReleased { session_id, reason: reason.to_owned() }, None);
        }
    }
}

impl Handler<QueueBoard> for AgentActor {
    type Result = ();

    fn handle(&mut self, QueueBoard { frame, to }: QueueBoard, _: &mut Self::Context) {
        match to {
            Some(id) => {
                self.awaiting_board.remove(&id);
                if let Some(socket) = self.sockets.get(&id) {
                    socket.outbox.send(frame);
                }
            }
            None => {
                for (id, socket) in &self.sockets {
                    if !self.awaiting_board.contains(id) {
                        socket.outbox.send(frame.clone());
                    }
                }
            }
        }
    }
}
