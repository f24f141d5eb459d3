//! The SessionRegistry routes: it maps session and agent ids to their actors
//! (starting them on demand), sends every inbound request to the actor that
//! owns it, and keeps the list of open sockets for shutdown. It holds no chat
//! state of its own.
//!
//! With a cluster (`REDIS_URL`), the actor that owns a request may run on
//! another node: a session's on the node holding its lease, the queue and
//! the agents' on the leader. The registry finds that node, passes the
//! request on through the link, and takes the requests other nodes pass to
//! it. It renews this node's leases, follows the leadership (starting or
//! stopping the queue and the agents here), and forgets nodes that died.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;
use uuid::Uuid;

use crate::error::{AppError, ErrorCode};

use crate::actors::agent::AgentActor;
use crate::actors::messages::*;
use crate::actors::queue::QueueActor;
use crate::actors::session::{NewChat, SessionActor};
use crate::actors::{ActorThreads, Services};
use crate::bus::Outbound;
use crate::cluster::leases::Holder;
use crate::cluster::link::{Incoming, LinkStatus, NodeUnreachable};
use crate::cluster::mail::{Mail, QueueWire};
use crate::cluster::{Cluster, NodeId};
use crate::db::{self, queries};
use crate::domain::Role;
use crate::protocol::client::{AgentRequest, CustomerRequest, PartnerRequest};
use crate::protocol::server::ServerEvent;
use crate::rate_limits::Action;

/// At most this many sessions are examined per abandonment sweep.
const ABANDON_SWEEP_BATCH: i64 = 500;
/// Mail passed from node to node more often than this is refused, not passed on again.
const MAX_HOPS: u8 = 3;
/// Mail held for one session while its owner is looked up.
const PARKED_PER_SESSION: usize = 256;
/// Remote owners remembered; past this the memory starts afresh.
const KNOWN_OWNERS: usize = 100_000;
/// Renewals between two looks for dead nodes (by the leader).
const DEAD_NODE_CHECK_EVERY: u32 = 3;

pub struct SessionRegistry {
    services: Services,
    cluster: Option<Cluster>,
    /// Where new session actors run.
    threads: ActorThreads,
    /// The queue, when this node runs it: always on a single node, on the leader in a cluster.
    queue: Option<Addr<QueueActor>>,
    /// The node that runs the queue and the agents, as last seen.
    leader: Option<NodeId>,
    sessions: HashMap<Uuid, Addr<SessionActor>>,
    agents: HashMap<Uuid, Addr<AgentActor>>,
    /// Sessions that another node runs, as last seen.
    owners: HashMap<Uuid, NodeId>,
    /// Mail for sessions whose owner is being looked up: (wake, mail, hops).
    parked: HashMap<Uuid, Vec<(bool, SessionMail, u8)>>,
    /// Sockets admitted per account and not yet closed (on this node).
    sockets_per_user: HashMap<Uuid, usize>,
    sockets: HashMap<SocketId, SocketHandle>,
    /// Agents' sockets here that joined, with the capacity they asked for:
    /// they join again when the agents move to another node.
    joined: HashMap<SocketId, (SocketHandle, Option<i32>)>,
    renewals: u32,
    /// Whether the last renewal reached Redis.
    leases_held: bool,
    /// When a renewal last reached Redis.
    renewed_at: Option<std::time::Instant>,
    /// Sockets that closed while the link was down: the nodes that had them
    /// attached hear of it when the link is back.
    closed_unheard: Vec<SocketClosed>,
}

/// Closes remembered while the link is down, at most.
const CLOSED_UNHEARD: usize = 100_000;

impl SessionRegistry {
    pub fn new(services: Services, cluster: Option<Cluster>, threads: ActorThreads) -> Self {
        SessionRegistry {
            services,
            threads,
            cluster,
            queue: None,
            leader: None,
            sessions: HashMap::new(),
            agents: HashMap::new(),
            owners: HashMap::new(),
            parked: HashMap::new(),
            sockets: HashMap::new(),
            sockets_per_user: HashMap::new(),
            joined: HashMap::new(),
            renewals: 0,
            leases_held: false,
            renewed_at: None,
            closed_unheard: Vec::new(),
        }
    }

    fn start_session(
        &mut self,
        session_id: Uuid,
        chat: Option<NewChat>,
        ctx: &mut Context<Self>,
    ) -> Addr<SessionActor> {
        let (services, registry) = (self.services.clone(), ctx.address());
        let addr = SessionActor::start_in_arbiter(self.threads.take_turn(), move |_| {
            SessionActor::new(session_id, services, registry, chat)
        });
        self.sessions.insert(session_id, addr.clone());
        self.owners.remove(&session_id);
        addr
    }

    fn agent(&mut self, agent_id: Uuid, ctx: &mut Context<Self>) -> Option<Addr<AgentActor>> {
        let queue = self.queue.clone()?;
        if let Some(addr) = self.agents.get(&agent_id).filter(|addr| addr.connected()) {
            return Some(addr.clone());
        }
        let addr = AgentActor::new(agent_id, self.services.clone(), ctx.address(), queue).start();
        self.agents.insert(agent_id, addr.clone());
        Some(addr)
    }

    // ---- sessions ----

    /// Delivers mail to the session's actor, here or on the node that runs it.
    fn route_session(&mut self, session_id: Uuid, wake: bool, mail: SessionMail, hops: u8, ctx: &mut Context<Self>) {
        if let Some(addr) = self.sessions.get(&session_id).filter(|addr| addr.connected()) {
            return mail.deliver(addr);
        }
        if self.cluster.is_none() {
            if wake {
                let addr = self.start_session(session_id, None, ctx);
                mail.deliver(&addr);
            }
            return;
        }
        if let Some(node) = self.owners.get(&session_id).cloned() {
            return self.pass_session(node, session_id, wake, mail, hops);
        }
        if let Some(parked) = self.parked.get_mut(&session_id) {
            if parked.len() >= PARKED_PER_SESSION {
                return mail.refuse(&AppError::new(ErrorCode::Overloaded, "too many requests for this chat at once"));
            }
            return parked.push((wake, mail, hops));
        }
        self.parked.insert(session_id, vec![(wake, mail, hops)]);
        self.find_owner(session_id, wake, ctx);
    }

    /// Asks Redis who runs the session; with `take`, takes it if nobody does.
    fn find_owner(&mut self, session_id: Uuid, take: bool, ctx: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else { return };
        let leases = cluster.leases.clone();
        let pool = self.services.pool.clone();
        let ask = async move {
            if !take {
                return leases.session_holder(session_id).await;
            }
            let last_holder = db::run(&pool, async |conn| queries::sessions::owner_node(conn, session_id).await)
                .await
                .map_err(|error| error.to_string())?;
            leases.claim_session(session_id, last_holder.as_deref()).await
        };
        ctx.spawn(ask.into_actor(self).map(move |holder, act, ctx| act.owner_found(session_id, take, holder, ctx)));
    }

    fn owner_found(&mut self, session_id: Uuid, took: bool, holder: Result<Holder, String>, ctx: &mut Context<Self>) {
        let Some(parked) = self.parked.remove(&session_id) else { return };
        let wanted = took || parked.iter().any(|(wake, _, _)| *wake);
        match holder {
            Ok(Holder::Us) if wanted => {
                let addr = match self.sessions.get(&session_id).filter(|addr| addr.connected()) {
                    Some(addr) => addr.clone(),
                    None => self.start_session(session_id, None, ctx),
                };
                for (_, mail, _) in parked {
                    mail.deliver(&addr);
                }
            }
            Ok(Holder::Node(node)) => {
                self.remember_owner(session_id, node.clone());
                for (wake, mail, hops) in parked {
                    self.pass_session(node.clone(), session_id, wake, mail, hops);
                }
            }
            Ok(Holder::Nobody) if wanted => {
                self.parked.insert(session_id, parked);
                self.find_owner(session_id, true, ctx);
            }
            // Nobody runs it, and this mail does not start it.
            Ok(_) => {}
            Err(error) => {
                log::warn!("cannot find who runs session {session_id}: {error}");
                let refusal = AppError::cluster_unavailable("this chat cannot be reached right now; try again");
                for (_, mail, _) in parked {
                    mail.refuse(&refusal);
                }
            }
        }
    }

    fn remember_owner(&mut self, session_id: Uuid, node: NodeId) {
        if self.owners.len() >= KNOWN_OWNERS {
            self.owners.clear();
        }
        self.owners.insert(session_id, node);
    }

    fn pass_session(&mut self, node: NodeId, session_id: Uuid, wake: bool, mail: SessionMail, hops: u8) {
        let Some(cluster) = &self.cluster else { return };
        if hops >= MAX_HOPS {
            self.owners.remove(&session_id);
            return mail.refuse(&AppError::cluster_unavailable("this chat is moving between nodes; try again"));
        }
        let wire = mail.export(&cluster.link, &node);
        cluster.link.send(&node, Mail::Session { session_id, wake, hops: hops + 1, mail: wire });
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
        let Some(cluster) = &self.cluster else {
            self.start_session(session_id, Some(chat), ctx);
            return;
        };
        // The lease first, so no other node can start the same session.
        let leases = cluster.leases.clone();
        let claim = async move { leases.claim_session(session_id, None).await };
        ctx.spawn(claim.into_actor(self).map(move |holder, act, ctx| match holder {
            Ok(Holder::Us) => {
                act.start_session(session_id, Some(chat), ctx);
            }
            _ => chat.reply.fail(&AppError::cluster_unavailable("a chat cannot be started right now; try again")),
        }));
    }

    fn release_lease(&self, session_id: Uuid, ctx: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else { return };
        let leases = cluster.leases.clone();
        ctx.spawn(
            async move {
                if let Err(error) = leases.release_session(session_id).await {
                    log::debug!("lease of session {session_id} not released: {error}");
                }
            }
            .into_actor(self),
        );
    }

    /// Closes sessions whose customer has been away longer than allowed.
    fn sweep_abandoned(&mut self, ctx: &mut Context<Self>) {
        // One node sweeps: the one that runs the queue.
        if self.queue.is_none() {
            return;
        }
        let pool = self.services.pool.clone();
        let before = Utc::now()
            - chrono::Duration::from_std(self.services.timing.abandon_after).unwrap_or(chrono::Duration::MAX);
        let find = async move {
            db::run(&pool, async |conn| queries::sessions::quiet_since(conn, before, ABANDON_SWEEP_BATCH).await).await
        };
        ctx.spawn(find.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok(quiet) => {
                for session_id in quiet {
                    act.route_session(session_id, true, CloseIfAbandoned.into(), 0, ctx);
                }
            }
            Err(error) => log::warn!("abandonment sweep skipped: {error}"),
        }));
    }

    // ---- agents and the queue ----

    /// Delivers mail to the agent's actor, on the node that runs the agents.
    fn route_agent(&mut self, agent_id: Uuid, mail: AgentMail, ctx: &mut Context<Self>) {
        if let Some(addr) = self.agent(agent_id, ctx) {
            return mail.deliver(&addr);
        }
        match (&self.cluster, &self.leader) {
            (Some(cluster), Some(leader)) if leader != cluster.node() => {
                if let Some(wire) = mail.export(&cluster.link, leader) {
                    cluster.link.send(leader, Mail::Agent { agent_id, mail: wire });
                }
            }
            _ => mail.refuse(&AppError::cluster_unavailable("the agents' node is changing; try again")),
        }
    }

    /// Runs a request another node sent for the queue, and answers its call.
    fn serve_queue<M>(&self, request: M, from: NodeId, call: Option<u64>)
    where
        M: QueueRequest,
        QueueActor: Handler<M>,
    {
        let Some(cluster) = &self.cluster else { return };
        let link = cluster.link.clone();
        let Some(queue) = self.queue.clone() else {
            let refusal = AppError::cluster_unavailable("this node no longer runs the queue; try again");
            request.refuse(&refusal);
            if let Some(call) = call {
                link.answer(&from, call, Err(refusal));
            }
            return;
        };
        actix::spawn(async move {
            let outcome = queue.send(request).await;
            if let Some(call) = call {
                let answer = match outcome {
                    Ok(result) => serde_json::to_value(result).map_err(AppError::internal),
                    Err(_) => Err(AppError::cluster_unavailable("the queue stopped; try again")),
                };
                link.answer(&from, call, answer);
            }
        });
    }

    fn become_leader(&mut self, ctx: &mut Context<Self>) {
        if self.queue.is_none() {
            log::info!("this node runs the queue and the agents");
            self.queue = Some(QueueActor::new(self.services.clone(), ctx.address()).start());
        }
    }

    fn step_down(&mut self) {
        if let Some(queue) = self.queue.take() {
            log::info!("this node no longer runs the queue and the agents");
            queue.do_send(Retire);
            for (_, agent) in self.agents.drain() {
                agent.do_send(Retire);
            }
        }
    }

    /// The agents run on `leader` now: the agents' sockets here join there.
    fn leader_is(&mut self, leader: NodeId, ctx: &mut Context<Self>) {
        if self.leader.as_ref() == Some(&leader) {
            return;
        }
        log::info!("the queue and the agents run on node {leader}");
        self.leader = Some(leader);
        let joined: Vec<(SocketHandle, Option<i32>)> = self.joined.values().cloned().collect();
        for (socket, max_concurrent) in joined {
            let agent_id = socket.caller.user_id;
            let join = AgentJoin { socket, reply: Reply::unanswered(), max_concurrent };
            self.route_agent(agent_id, join.into(), ctx);
        }
    }

    /// Renews this node's leases, and follows who leads.
    fn keep_leases(&mut self, ctx: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else { return };
        let leases = cluster.leases.clone();
        let sessions: Vec<Uuid> = self.sessions.keys().copied().collect();
        self.renewals = self.renewals.wrapping_add(1);
        let look_for_dead = self.queue.is_some() && self.renewals % DEAD_NODE_CHECK_EVERY == 0;
        let renew = async move {
            leases.heartbeat().await?;
            let (lost, lapsed) = leases.renew_sessions(&sessions).await?;
            let leader = leases.claim_leader().await?;
            let dead = if look_for_dead { leases.dead_nodes().await? } else { Vec::new() };
            Ok::<_, String>((lost, lapsed, leader, dead))
        };
        ctx.spawn(renew.into_actor(self).map(|outcome, act, ctx| {
            let Some(cluster) = act.cluster.clone() else { return };
            match outcome {
                Ok((lost, lapsed, leader, dead)) => {
                    if !act.leases_held {
                        log::info!("cluster leases renewed");
                    }
                    act.leases_held = true;
                    act.renewed_at = Some(std::time::Instant::now());
                    for session_id in lost {
                        act.lost_session(session_id);
                    }
                    // Held again after a lapse: each actor checks that no
                    // other node took the session meanwhile.
                    for session_id in lapsed {
                        if let Some(addr) = act.sessions.get(&session_id) {
                            addr.do_send(CheckOwnership);
                        }
                    }
                    match leader {
                        Holder::Us => act.become_leader(ctx),
                        Holder::Node(_) | Holder::Nobody => act.step_down(),
                    }
                    match leader {
                        Holder::Us => act.leader_is(cluster.node().clone(), ctx),
                        Holder::Node(node) => act.leader_is(node, ctx),
                        Holder::Nobody => {}
                    }
                    for node in dead {
                        log::info!("node {node} is gone");
                        cluster.link.broadcast(Mail::NodeGone(node));
                    }
                }
                Err(error) => {
                    if act.leases_held {
                        log::warn!("cluster leases not renewed: {error}");
                    }
                    act.leases_held = false;
                    // Cut off for a whole lease: another node may lead by now.
                    if act.renewed_at.is_none_or(|at| at.elapsed() >= cluster.lease) {
                        act.step_down();
                        act.leader = None;
                    }
                }
            }
        }));
    }

    /// Another node runs this session now: this actor stops writing, and
    /// its clients reconnect to find the session where it is.
    fn lost_session(&mut self, session_id: Uuid) {
        if let Some(addr) = self.sessions.remove(&session_id) {
            log::warn!("session {session_id} moved to another node");
            addr.do_send(Superseded);
        }
    }

    /// The sockets of `node` are gone: the actors here forget them, and
    /// requests waiting on it fail.
    fn forget_node(&mut self, node: &NodeId) {
        if let Some(cluster) = &self.cluster {
            cluster.link.fail_calls_to(node);
        }
        self.owners.retain(|_, owner| owner != node);
        if self.leader.as_ref() == Some(node) {
            self.leader = None;
        }
        let gone = DropSocketsOn(node.clone());
        for addr in self.sessions.values() {
            addr.do_send(gone.clone());
        }
        for addr in self.agents.values() {
            addr.do_send(gone.clone());
        }
    }

    fn receive(&mut self, from: NodeId, mail: Mail, ctx: &mut Context<Self>) {
        let Some(cluster) = self.cluster.clone() else { return };
        let link = &cluster.link;
        match mail {
            Mail::Session { session_id, wake, hops, mail } => {
                // The sender thinks this node runs it: what this node thought is stale.
                if !self.sessions.contains_key(&session_id) {
                    self.owners.remove(&session_id);
                }
                let mail = mail.import(session_id, link);
                self.route_session(session_id, wake, mail, hops, ctx);
            }
            Mail::Agent { agent_id, mail } => {
                let mail = mail.import(agent_id, link);
                // A socket closing or a profile changing matters only to an agent who is here.
                let only_if_live = matches!(mail, AgentMail::SocketGone(_) | AgentMail::ProfileChanged(_));
                if only_if_live && !self.agents.get(&agent_id).is_some_and(Addr::connected) {
                    return;
                }
                match self.agent(agent_id, ctx) {
                    Some(addr) => mail.deliver(&addr),
                    None => mail.refuse(&AppError::cluster_unavailable("this node no longer runs the agents")),
                }
            }
            Mail::Queue { call, request } => match request {
                QueueWire::Enqueue(request) => self.serve_queue(request, from, call),
                QueueWire::PositionOf(request) => self.serve_queue(request, from, call),
                QueueWire::Pickup { agent_id, session_id, socket_id, reply } => {
                    let reply = link.import_reply(reply);
                    self.serve_queue(Pickup { agent_id, session_id, socket_id, reply }, from, call)
                }
                QueueWire::Transfer(request) => self.serve_queue(request, from, call),
                QueueWire::SessionEnded(request) => self.serve_queue(request, from, call),
                QueueWire::Reprioritize(request) => self.serve_queue(request, from, call),
                QueueWire::Preview(request) => self.serve_queue(request, from, call),
                QueueWire::TeamsChanged(request) => self.serve_queue(request, from, call),
                QueueWire::LeaveOffline(request) => self.serve_queue(request, from, call),
                QueueWire::Snapshot(request) => self.serve_queue(request, from, call),
            },
            Mail::CloseSocketsOf(user_id) if from != *cluster.node() => {
                self.close_sockets_of(user_id, "this account was disabled")
            }
            Mail::NodeGone(node) if node != *cluster.node() => self.forget_node(&node),
            // Another node took this one for dead (it was cut off for a
            // while): its sockets that follow other nodes were dropped there.
            Mail::NodeGone(_) if from != *cluster.node() => {
                log::warn!("node {from} took this node for gone: its clients that follow other nodes reconnect");
                self.lost_touch();
            }
            Mail::ToPartnerOrg { partner_org_id, event } if from != *cluster.node() => {
                self.tell_partner_org(partner_org_id, &event)
            }
            Mail::NodeGone(_)
            | Mail::CloseSocketsOf(_)
            | Mail::ToPartnerOrg { .. }
            | Mail::Outbound { .. }
            | Mail::Answer { .. } => {}
        }
    }

    /// Frames from other nodes may have been lost: the sockets here that
    /// follow a chat run elsewhere (or the agents, run elsewhere) close, and
    /// their clients reconnect and resume.
    fn lost_touch(&mut self) {
        self.owners.clear();
        let sessions_here: Arc<HashSet<Uuid>> = Arc::new(self.sessions.keys().copied().collect());
        let agents_here = self.queue.is_some();
        for socket in self.sockets.values() {
            socket.outbox.tell(Outbound::LinkLost { sessions_here: sessions_here.clone(), agents_here });
        }
    }

    fn socket_closed(&mut self, closed: SocketClosed, ctx: &mut Context<Self>) {
        if let Some(cluster) = &self.cluster {
            if !cluster.link.is_up() && self.closed_unheard.len() < CLOSED_UNHEARD {
                self.closed_unheard.push(SocketClosed {
                    socket_id: closed.socket_id,
                    caller: closed.caller.clone(),
                    sessions: closed.sessions.clone(),
                });
            }
        }
        let SocketClosed { socket_id, caller, sessions } = closed;
        for session_id in sessions {
            self.route_session(session_id, false, Detach { socket_id }.into(), 0, ctx);
        }
        if matches!(caller.role, Role::Agent | Role::Admin) {
            let known = self.queue.is_none() || self.agents.contains_key(&caller.user_id);
            if known {
                self.route_agent(caller.user_id, AgentSocketGone { socket_id }.into(), ctx);
            }
        }
    }

    fn tell_partner_org(&self, partner_org_id: Uuid, event: &ServerEvent) {
        let frame = event.frame(None);
        let members = self.sockets.values().filter(|socket| {
            socket.caller.role == Role::Partner && socket.caller.partner_org_id == Some(partner_org_id)
        });
        for socket in members {
            socket.outbox.send(frame.clone());
        }
    }

    fn close_sockets_of(&self, user_id: Uuid, reason: &str) {
        for socket in self.sockets.values().filter(|socket| socket.caller.user_id == user_id) {
            socket.outbox.tell(Outbound::Close(reason.to_owned()));
        }
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.services.timing.abandon_sweep, |act, ctx| act.sweep_abandoned(ctx));
        let Some(cluster) = self.cluster.clone() else {
            self.queue = Some(QueueActor::new(self.services.clone(), ctx.address()).start());
            return;
        };
        cluster.link.deliver_to(ctx.address().recipient(), ctx.address().recipient(), ctx.address().recipient());
        let leases = cluster.leases.clone();
        let link = cluster.link.clone();
        let node = cluster.node().clone();
        ctx.spawn(
            async move {
                // Sockets an earlier run under this name had are gone.
                if let Err(error) = leases.forget_earlier_run().await {
                    log::warn!("cluster: cannot clear what an earlier run left: {error}");
                }
                link.broadcast(Mail::NodeGone(node));
            }
            .into_actor(self),
        );
        self.keep_leases(ctx);
        ctx.run_interval(cluster.lease / 3, |act, ctx| act.keep_leases(ctx));
    }
}

impl Handler<Incoming> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, Incoming { from, mail }: Incoming, ctx: &mut Self::Context) {
        self.receive(from, mail, ctx);
    }
}

impl Handler<LinkStatus> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, LinkStatus { up }: LinkStatus, ctx: &mut Self::Context) {
        if self.cluster.is_none() {
            return;
        }
        if up {
            // Before another node takes a lease that lapsed meanwhile.
            self.keep_leases(ctx);
            // The nodes that had these sockets attached hear they are gone.
            for closed in std::mem::take(&mut self.closed_unheard) {
                self.socket_closed(closed, ctx);
            }
            return;
        }
        self.lost_touch();
    }
}

impl Handler<NodeUnreachable> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, NodeUnreachable(node): NodeUnreachable, _: &mut Self::Context) {
        self.owners.retain(|_, owner| *owner != node);
        if self.leader.as_ref() == Some(&node) {
            self.leader = None;
        }
    }
}

impl Handler<AdmitSocket> for SessionRegistry {
    type Result = ResponseActFuture<Self, Result<bool, AppError>>;

    fn handle(&mut self, AdmitSocket { user_id }: AdmitSocket, _: &mut Self::Context) -> Self::Result {
        let limit = self.services.limits.sockets_per_account;
        let too_many = |open: usize| {
            AppError::new(
                ErrorCode::TooManySockets,
                format!("this account already has {open} sockets open; close one first"),
            )
        };
        let open = self.sockets_per_user.get(&user_id).copied().unwrap_or(0);
        if open >= limit {
            return Box::pin(fut::ready(Err(too_many(open))));
        }
        *self.sockets_per_user.entry(user_id).or_default() += 1;
        let Some(cluster) = &self.cluster else { return Box::pin(fut::ready(Ok(false))) };
        // Counted across nodes; with Redis away, this node's count alone.
        let leases = cluster.leases.clone();
        let admit = async move { leases.admit_socket(user_id, limit).await };
        Box::pin(admit.into_actor(self).map(move |outcome, act, _| match outcome {
            Ok((_, true)) => Ok(true),
            Ok((open, false)) => {
                act.release_slot(user_id);
                Err(too_many(open))
            }
            Err(error) => {
                log::debug!("socket counted on this node only: {error}");
                Ok(false)
            }
        }))
    }
}

impl SessionRegistry {
    fn release_slot(&mut self, user_id: Uuid) {
        if let Some(open) = self.sockets_per_user.get_mut(&user_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.sockets_per_user.remove(&user_id);
            }
        }
    }
}

impl Handler<ReleaseSocketSlot> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, ReleaseSocketSlot { user_id, shared }: ReleaseSocketSlot, ctx: &mut Self::Context) {
        self.release_slot(user_id);
        if let (true, Some(cluster)) = (shared, &self.cluster) {
            let leases = cluster.leases.clone();
            ctx.spawn(
                async move {
                    if let Err(error) = leases.release_socket(user_id).await {
                        log::debug!("socket count not released in Redis: {error}");
                    }
                }
                .into_actor(self),
            );
        }
    }
}

impl Handler<RegisterSocket> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, RegisterSocket(socket, recipient): RegisterSocket, _: &mut Self::Context) {
        if let Some(cluster) = &self.cluster {
            cluster.link.register_socket(socket.id, recipient);
        }
        self.sockets.insert(socket.id, socket);
    }
}

impl Handler<SocketClosed> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, closed: SocketClosed, ctx: &mut Self::Context) {
        self.sockets.remove(&closed.socket_id);
        self.joined.remove(&closed.socket_id);
        if let Some(cluster) = &self.cluster {
            cluster.link.forget_socket(closed.socket_id);
        }
        self.socket_closed(closed, ctx);
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
                let command = SessionCommand { origin: Origin::socket(socket), reply, request };
                self.route_session(session_id, true, command.into(), 0, ctx)
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
                self.joined.insert(socket.id, (socket.clone(), join.max_concurrent));
                let join = AgentJoin { socket, reply, max_concurrent: join.max_concurrent };
                self.route_agent(agent_id, join.into(), ctx)
            }
            AgentRequest::SetStatus(set) => {
                let set = AgentSetStatus { socket, reply, status: set.status.into() };
                self.route_agent(agent_id, set.into(), ctx)
            }
            AgentRequest::PickupSession { session_id } => {
                ctx.notify(ToQueue(Pickup { agent_id, session_id, socket_id: socket.id, reply }))
            }
            AgentRequest::Session { session_id, request } => {
                let command = SessionCommand { origin: Origin::socket(socket), reply, request };
                self.route_session(session_id, true, command.into(), 0, ctx)
            }
            // The socket answers these itself (`Socket::on_admin`).
            AgentRequest::Admin(_) => reply.fail(&AppError::new(ErrorCode::Forbidden, "admins only")),
        }
    }
}

impl Handler<FromPartner> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, FromPartner { socket, reply, request }: FromPartner, ctx: &mut Self::Context) {
        let PartnerRequest { session_id, request } = request;
        let command = SessionCommand { origin: Origin::socket(socket), reply, request };
        self.route_session(session_id, true, command.into(), 0, ctx)
    }
}

impl Handler<ToPartnerOrg> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, ToPartnerOrg { partner_org_id, event }: ToPartnerOrg, _: &mut Self::Context) {
        self.tell_partner_org(partner_org_id, &event);
        if let Some(cluster) = &self.cluster {
            cluster.link.broadcast(Mail::ToPartnerOrg { partner_org_id, event });
        }
    }
}

impl Handler<ToSession> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, ToSession { session_id, wake, mail }: ToSession, ctx: &mut Self::Context) {
        self.route_session(session_id, wake, mail, 0, ctx);
    }
}

impl Handler<ToAgent> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, ToAgent { agent_id, mail }: ToAgent, ctx: &mut Self::Context) {
        self.route_agent(agent_id, mail, ctx);
    }
}

impl<M> Handler<ToQueue<M>> for SessionRegistry
where
    M: QueueRequest,
    QueueActor: Handler<M>,
{
    type Result = ResponseFuture<M::Result>;

    fn handle(&mut self, ToQueue(request): ToQueue<M>, _: &mut Self::Context) -> Self::Result {
        if let Some(queue) = self.queue.clone() {
            return Box::pin(async move {
                match queue.send(request).await {
                    Ok(result) => result,
                    Err(_) => M::unanswered(&AppError::new(ErrorCode::Internal, "the queue stopped")),
                }
            });
        }
        let (Some(cluster), Some(leader)) = (&self.cluster, self.leader.clone()) else {
            let refusal = AppError::cluster_unavailable("the queue is moving to another node; try again");
            let refused = request.refuse(&refusal);
            return Box::pin(async move { refused });
        };
        let link = cluster.link.clone();
        let wire = request.to_wire(&link, &leader);
        let answer = link.call(&leader, |call| Mail::Queue { call: Some(call), request: wire });
        Box::pin(async move {
            match answer.await {
                Ok(Ok(value)) => {
                    serde_json::from_value(value).unwrap_or_else(|error| M::unanswered(&AppError::internal(error)))
                }
                Ok(Err(error)) => M::unanswered(&error),
                Err(_) => M::unanswered(&AppError::cluster_unavailable("the queue did not answer; try again")),
            }
        })
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

    fn handle(&mut self, SessionIdle { session_id, addr }: SessionIdle, ctx: &mut Self::Context) {
        if self.sessions.get(&session_id) == Some(&addr) {
            self.sessions.remove(&session_id);
            addr.do_send(Retire);
            self.release_lease(session_id, ctx);
        }
    }
}

impl Handler<SessionStopped> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, SessionStopped { session_id, addr }: SessionStopped, ctx: &mut Self::Context) {
        if self.sessions.get(&session_id) == Some(&addr) {
            self.sessions.remove(&session_id);
            self.release_lease(session_id, ctx);
        }
    }
}

impl Handler<CloseAllSockets> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, _: CloseAllSockets, _: &mut Self::Context) {
        for socket in self.sockets.values() {
            socket.outbox.tell(Outbound::Close("the server is restarting".to_owned()));
        }
    }
}

impl Handler<LiveActors> for SessionRegistry {
    type Result = LiveCounts;

    fn handle(&mut self, _: LiveActors, _: &mut Self::Context) -> LiveCounts {
        LiveCounts { sessions: self.sessions.len(), agents: self.agents.len() }
    }
}

impl Handler<ThisNode> for SessionRegistry {
    type Result = Option<NodeView>;

    fn handle(&mut self, _: ThisNode, _: &mut Self::Context) -> Option<NodeView> {
        let cluster = self.cluster.as_ref()?;
        Some(NodeView {
            node: cluster.node().to_string(),
            leader: self.queue.is_some(),
            link_up: cluster.link.is_up(),
            leases_held: self.leases_held,
        })
    }
}

impl Handler<AgentProfileChanged> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, changed: AgentProfileChanged, ctx: &mut Self::Context) {
        // An agent without a live actor reads the new profile when they next join.
        let live = self.agents.get(&changed.agent_id).is_some_and(Addr::connected);
        if live || self.queue.is_none() {
            self.route_agent(changed.agent_id, changed.into(), ctx);
        }
    }
}

impl Handler<CloseSocketsOf> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, CloseSocketsOf(user_id): CloseSocketsOf, _: &mut Self::Context) {
        self.close_sockets_of(user_id, "this account was disabled");
        if let Some(cluster) = &self.cluster {
            cluster.link.broadcast(Mail::CloseSocketsOf(user_id));
        }
    }
}

/// How long shutdown waits for the sessions to take what they had received.
const QUIESCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Handler<Quiesce> for SessionRegistry {
    type Result = ResponseFuture<()>;

    /// Sessions run on other threads: each is asked in turn, behind the
    /// requests already passed to it, before the writer is drained.
    fn handle(&mut self, _: Quiesce, _: &mut Self::Context) -> Self::Result {
        let asked: Vec<_> = self.sessions.values().map(|session| session.send(Quiesce)).collect();
        Box::pin(async move {
            let all = futures_util::future::join_all(asked);
            if tokio::time::timeout(QUIESCE_TIMEOUT, all).await.is_err() {
                log::warn!("some sessions were still busy after {QUIESCE_TIMEOUT:?} at shutdown");
            }
        })
    }
}
