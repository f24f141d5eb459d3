//! The handoff queue: waiting sessions by priority (high, normal, low), then
//! by how long they have waited. It assigns them to online agents with free
//! capacity, least loaded first, and is the only actor that changes who has a
//! session, so assignment decisions never race. Every change is written to
//! `queue_entries` / `chat_sessions` first, with a conditional update that
//! only one assignment can win.

use std::collections::{HashMap, HashSet};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::actors::agent::AgentActor;
use crate::actors::messages::*;
use crate::actors::registry::SessionRegistry;
use crate::actors::Services;
use crate::db::{self, queries};
use crate::domain::{Presence, Priority};
use crate::error::{AppError, ErrorCode};
use crate::protocol::server::{QueueItem, ServerEvent};

const PREVIEW_CHARS: usize = 140;

struct Waiting {
    session_id: Uuid,
    priority: Priority,
    reason: Option<String>,
    requested_at: DateTime<Utc>,
    customer_name: String,
    preview: Option<String>,
    /// An agent who just handed this session back is not given it again.
    skip_agent: Option<Uuid>,
}

struct AgentSlot {
    addr: Addr<AgentActor>,
    presence: Presence,
    max_concurrent: usize,
}

pub struct QueueActor {
    services: Services,
    registry: Addr<SessionRegistry>,
    waiting: Vec<Waiting>,
    agents: HashMap<Uuid, AgentSlot>,
    /// Who has which session; the queue's own record of its decisions.
    assigned: HashMap<Uuid, HashSet<Uuid>>,
    /// The last position each waiting session was told.
    told_positions: HashMap<Uuid, usize>,
    /// The board as agents last saw it (positions aside): what a change is measured against.
    shown: HashMap<Uuid, QueueItem>,
    /// Agents with a socket open, who get every change to the board.
    watchers: HashMap<Uuid, Addr<AgentActor>>,
    assigning: bool,
}

fn preview(text: &str) -> String {
    let mut preview: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        preview.push('…');
    }
    preview
}

impl QueueActor {
    pub fn new(services: Services, registry: Addr<SessionRegistry>) -> Self {
        QueueActor {
            services,
            registry,
            waiting: Vec::new(),
            agents: HashMap::new(),
            assigned: HashMap::new(),
            told_positions: HashMap::new(),
            shown: HashMap::new(),
            watchers: HashMap::new(),
            assigning: false,
        }
    }

    fn insert(&mut self, entry: Waiting) -> usize {
        let key = (entry.priority.rank(), entry.requested_at);
        let index = self.waiting.partition_point(|other| (other.priority.rank(), other.requested_at) <= key);
        self.waiting.insert(index, entry);
        index + 1
    }

    fn position(&self, session_id: Uuid) -> Option<usize> {
        self.waiting.iter().position(|entry| entry.session_id == session_id).map(|index| index + 1)
    }

    fn load(&self, agent_id: Uuid) -> usize {
        self.assigned.get(&agent_id).map_or(0, HashSet::len)
    }

    fn owner_of(&self, session_id: Uuid) -> Option<Uuid> {
        self.assigned.iter().find(|(_, sessions)| sessions.contains(&session_id)).map(|(agent, _)| *agent)
    }

    fn items(&self) -> Vec<QueueItem> {
        self.waiting
            .iter()
            .enumerate()
            .map(|(index, entry)| QueueItem {
                session_id: entry.session_id,
                priority: entry.priority,
                reason: entry.reason.clone(),
                waiting_since: entry.requested_at,
                position: index + 1,
                customer_name: entry.customer_name.clone(),
                preview: entry.preview.clone(),
            })
            .collect()
    }

    /// Tells every agent the new board and every moved session its new place.
    fn publish(&mut self) {
        // Agents get what changed, never the whole board again: with
        // thousands waiting, the whole board on every change is megabytes.
        let mut upserted = Vec::new();
        let mut now_shown = HashMap::with_capacity(self.waiting.len());
        for item in self.items() {
            let unplaced = QueueItem { position: 0, ..item.clone() };
            if self.shown.get(&item.session_id) != Some(&unplaced) {
                upserted.push(item);
            }
            now_shown.insert(unplaced.session_id, unplaced);
        }
        let removed: Vec<Uuid> = self.shown.keys().filter(|id| !now_shown.contains_key(id)).copied().collect();
        self.shown = now_shown;
        if !upserted.is_empty() || !removed.is_empty() {
            let frame = ServerEvent::QueueChanged { upserted, removed }.frame(None);
            for agent in self.watchers.values() {
                agent.do_send(QueueBoard { frame: frame.clone(), to: None });
            }
        }
        let mut still_waiting = HashMap::with_capacity(self.waiting.len());
        for (index, entry) in self.waiting.iter().enumerate() {
            let position = index + 1;
            if self.told_positions.get(&entry.session_id) != Some(&position) {
                self.registry.do_send(ToSession {
                    session_id: entry.session_id,
                    wake: false,
                    mail: QueuePositionChanged { position }.into(),
                });
            }
            still_waiting.insert(entry.session_id, position);
        }
        self.told_positions = still_waiting;
    }

    /// The online agent with the most room, excluding `skip`.
    fn best_agent(&self, skip: Option<Uuid>) -> Option<Uuid> {
        self.agents
            .iter()
            .filter(|(id, slot)| {
                slot.presence == Presence::Online && Some(**id) != skip && self.load(**id) < slot.max_concurrent
            })
            .min_by_key(|(id, slot)| (self.load(**id), std::cmp::Reverse(slot.max_concurrent), **id))
            .map(|(id, _)| *id)
    }

    fn record_assignment(&mut self, session_id: Uuid, agent_id: Uuid, pickup: Option<(SocketId, Reply)>) {
        if let Some(entry) = self.waiting.iter().find(|entry| entry.session_id == session_id) {
            let waited = (Utc::now() - entry.requested_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.services.metrics.queue_wait_seconds.observe(waited);
        }
        self.waiting.retain(|entry| entry.session_id != session_id);
        self.assigned.entry(agent_id).or_default().insert(session_id);
        match self.agents.get(&agent_id) {
            Some(slot) => slot.addr.do_send(AssignSession { session_id, pickup }),
            None => self.registry.do_send(ToAgent { agent_id, mail: AssignSession { session_id, pickup }.into() }),
        }
    }

    fn release(&mut self, agent_id: Uuid, session_id: Uuid, reason: &'static str) {
        if let Some(sessions) = self.assigned.get_mut(&agent_id) {
            sessions.remove(&session_id);
        }
        if let Some(slot) = self.agents.get(&agent_id) {
            slot.addr.do_send(ReleaseSession { session_id, reason });
        }
    }

    /// Assigns waiting sessions, one committed assignment at a time, while an
    /// agent has room.
    fn try_assign(&mut self, ctx: &mut Context<Self>) {
        if self.assigning {
            return;
        }
        let Some((session_id, agent_id)) = self
            .waiting
            .iter()
            .find_map(|entry| self.best_agent(entry.skip_agent).map(|agent| (entry.session_id, agent)))
        else {
            return;
        };
        self.assigning = true;
        let commit = commit_assignment(self.services.pool.clone(), session_id, agent_id);
        ctx.wait(commit.into_actor(self).map(move |outcome, act, ctx| {
            act.assigning = false;
            match outcome {
                Ok(true) => {
                    log::info!("session {session_id} assigned to agent {agent_id}");
                    act.record_assignment(session_id, agent_id, None);
                    act.publish();
                }
                Ok(false) => {
                    // Closed or taken elsewhere meanwhile: it is not waiting any more.
                    act.waiting.retain(|entry| entry.session_id != session_id);
                    act.publish();
                }
                Err(error) => {
                    log::error!("assigning session {session_id} failed: {error}; retrying shortly");
                    ctx.run_later(std::time::Duration::from_secs(1), |act, ctx| act.try_assign(ctx));
                    return;
                }
            }
            act.try_assign(ctx);
        }));
    }
}

/// Gives `session_id` to `agent_id` in the database; false when the session
/// was no longer waiting.
async fn commit_assignment(pool: crate::db::Pool, session_id: Uuid, agent_id: Uuid) -> Result<bool, AppError> {
    let mut conn = pool.get().await?;
    Ok(conn.transaction(async |conn| queries::queue::assign(conn, session_id, agent_id).await).await?)
}

impl Handler<Retire> for QueueActor {
    type Result = ();

    /// Another node runs the queue now.
    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    /// Rebuilds the queue and the assignments from PostgreSQL.
    fn started(&mut self, ctx: &mut Self::Context) {
        let pool = self.services.pool.clone();
        let load = async move {
            db::run(&pool, async |conn| {
                let waiting = queries::queue::waiting(conn).await?;
                let assigned = queries::sessions::assigned_pairs(conn).await?;
                Ok((waiting, assigned))
            })
            .await
        };
        ctx.wait(load.into_actor(self).map(|outcome, act, _| match outcome {
            Ok((waiting, assigned)) => {
                for row in waiting {
                    act.insert(Waiting {
                        session_id: row.session_id,
                        priority: row.priority,
                        reason: row.reason,
                        requested_at: row.requested_at,
                        customer_name: row.customer_name,
                        preview: row.preview.as_deref().map(preview),
                        skip_agent: None,
                    });
                }
                for (agent_id, session_id) in assigned {
                    act.assigned.entry(agent_id).or_default().insert(session_id);
                }
                log::info!(
                    "queue rebuilt: {} waiting, {} agents with open sessions",
                    act.waiting.len(),
                    act.assigned.len()
                );
                act.registry.do_send(EnsureAgents(act.assigned.keys().copied().collect()));
                act.told_positions = act.waiting.iter().enumerate().map(|(i, e)| (e.session_id, i + 1)).collect();
                act.publish();
            }
            Err(error) => log::error!("the queue could not be rebuilt from the database: {error}"),
        }));
    }
}

impl Handler<Enqueue> for QueueActor {
    type Result = AtomicResponse<Self, Result<usize, AppError>>;

    fn handle(&mut self, request: Enqueue, _: &mut Self::Context) -> Self::Result {
        if let Some(position) = self.position(request.session_id) {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(position))));
        }
        let pool = self.services.pool.clone();
        let requested_at = Utc::now();
        let (session_id, priority, reason) = (request.session_id, request.priority, request.reason.clone());
        let commit = async move {
            let mut conn = pool.get().await?;
            let queued = conn
                .transaction(async |conn| {
                    queries::queue::enqueue(conn, session_id, priority, reason.as_deref(), requested_at, None).await
                })
                .await?;
            Ok::<_, AppError>(queued)
        };
        AtomicResponse::new(Box::pin(commit.into_actor(self).map(move |outcome, act, ctx| {
            if !outcome? {
                return Err(AppError::new(ErrorCode::Conflict, "this chat cannot be queued now"));
            }
            let position = act.insert(Waiting {
                session_id,
                priority,
                reason: request.reason,
                requested_at,
                customer_name: request.customer_name,
                preview: request.preview.as_deref().map(preview),
                skip_agent: None,
            });
            // The session tells its customer its position itself, in its reply.
            act.told_positions.insert(session_id, position);
            act.publish();
            ctx.run_later(std::time::Duration::ZERO, |act, ctx| act.try_assign(ctx));
            Ok(position)
        })))
    }
}

impl Handler<Pickup> for QueueActor {
    type Result = ();

    fn handle(&mut self, Pickup { agent_id, session_id, socket_id, reply }: Pickup, ctx: &mut Self::Context) {
        let Some(slot) = self.agents.get(&agent_id) else {
            return reply.fail(&AppError::new(ErrorCode::AgentNotJoined, "send agent:join first"));
        };
        if self.load(agent_id) >= slot.max_concurrent {
            return reply.fail(&AppError::new(
                ErrorCode::AgentUnavailable,
                format!("you already have {} chats, your most at once", slot.max_concurrent),
            ));
        }
        if self.position(session_id).is_none() {
            return reply.fail(&match self.owner_of(session_id) {
                Some(_) => AppError::new(ErrorCode::AlreadyAssigned, "another agent already has this session"),
                None => AppError::new(ErrorCode::NotWaiting, "that session is not waiting in the queue"),
            });
        }
        let commit = commit_assignment(self.services.pool.clone(), session_id, agent_id);
        ctx.wait(commit.into_actor(self).map(move |outcome, act, ctx| {
            match outcome {
                Ok(true) => {
                    log::info!("session {session_id} picked up by agent {agent_id}");
                    act.record_assignment(session_id, agent_id, Some((socket_id, reply)));
                }
                Ok(false) => {
                    act.waiting.retain(|entry| entry.session_id != session_id);
                    reply.fail(&AppError::new(ErrorCode::AlreadyAssigned, "another agent already has this session"));
                }
                Err(error) => return reply.fail(&error),
            }
            act.publish();
            act.try_assign(ctx);
        }));
    }
}

impl Handler<TransferSession> for QueueActor {
    type Result = AtomicResponse<Self, Result<TransferOutcome, AppError>>;

    fn handle(&mut self, transfer: TransferSession, _: &mut Self::Context) -> Self::Result {
        let TransferSession { session_id, customer_name, from_agent, to_agent, priority, reason } = transfer;
        let pool = self.services.pool.clone();
        if let Some(to_agent) = to_agent {
            let available = self
                .agents
                .get(&to_agent)
                .is_some_and(|slot| slot.presence == Presence::Online && self.load(to_agent) < slot.max_concurrent);
            if !available {
                let error = AppError::new(ErrorCode::AgentUnavailable, "that agent is not online or has no free slot");
                return AtomicResponse::new(Box::pin(actix::fut::ready(Err(error))));
            }
            let commit = async move {
                let mut conn = pool.get().await?;
                let moved = conn
                    .transaction(async |conn| queries::queue::reassign(conn, session_id, from_agent, to_agent).await)
                    .await?;
                Ok::<_, AppError>(moved)
            };
            return AtomicResponse::new(Box::pin(commit.into_actor(self).map(move |outcome, act, _| {
                if !outcome? {
                    return Err(AppError::new(ErrorCode::Conflict, "the session is no longer yours"));
                }
                act.release(from_agent, session_id, "transferred");
                act.record_assignment(session_id, to_agent, None);
                Ok(TransferOutcome::Reassigned { agent_id: to_agent })
            })));
        }
        let requested_at = Utc::now();
        let why = reason.clone().unwrap_or_else(|| "transferred".to_owned());
        let commit = async move {
            let mut conn = pool.get().await?;
            let queued = conn
                .transaction(async |conn| {
                    let queued =
                        queries::queue::requeue(conn, session_id, from_agent, Some(priority), &why, Some(requested_at))
                            .await?;
                    if queued.is_some() {
                        queries::analytics::transferred(conn, session_id).await?;
                    }
                    Ok::<_, diesel::result::Error>(queued)
                })
                .await?;
            Ok::<_, AppError>(queued)
        };
        AtomicResponse::new(Box::pin(commit.into_actor(self).map(move |outcome, act, ctx| {
            let Some((priority, requested_at, _)) = outcome? else {
                return Err(AppError::new(ErrorCode::Conflict, "the session is no longer yours"));
            };
            act.release(from_agent, session_id, "transferred");
            let position = act.insert(Waiting {
                session_id,
                priority,
                reason: Some(reason.unwrap_or_else(|| "transferred".to_owned())),
                requested_at,
                customer_name,
                preview: None,
                skip_agent: Some(from_agent),
            });
            act.told_positions.insert(session_id, position);
            act.publish();
            ctx.run_later(std::time::Duration::ZERO, |act, ctx| act.try_assign(ctx));
            Ok(TransferOutcome::Queued { position })
        })))
    }
}

impl Handler<SessionEnded> for QueueActor {
    type Result = ();

    fn handle(&mut self, SessionEnded { session_id, agent_id }: SessionEnded, ctx: &mut Self::Context) {
        let was_waiting = self.position(session_id).is_some();
        self.waiting.retain(|entry| entry.session_id != session_id);
        if let Some(agent_id) = agent_id.or_else(|| self.owner_of(session_id)) {
            self.release(agent_id, session_id, "closed");
        }
        if was_waiting {
            self.publish();
        }
        self.try_assign(ctx);
    }
}

impl Handler<AgentPresence> for QueueActor {
    type Result = ();

    fn handle(&mut self, presence: AgentPresence, ctx: &mut Self::Context) {
        if presence.presence == Presence::Offline {
            self.watchers.remove(&presence.agent_id);
        }
        self.agents.insert(
            presence.agent_id,
            AgentSlot { addr: presence.addr, presence: presence.presence, max_concurrent: presence.max_concurrent },
        );
        log::debug!("agent {} ({}) is {}", presence.agent_id, presence.name, presence.presence);
        self.try_assign(ctx);
    }
}

/// How soon the sessions of an agent who left are requeued again after the database failed.
const REQUEUE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Handler<AgentGone> for QueueActor {
    type Result = ();

    fn handle(&mut self, AgentGone { agent_id }: AgentGone, ctx: &mut Self::Context) {
        if let Some(slot) = self.agents.get_mut(&agent_id) {
            if slot.presence != Presence::Offline {
                // Back before the requeue could be stored (a retry after an outage).
                return;
            }
        }
        let sessions: Vec<Uuid> = self.assigned.get(&agent_id).map(|s| s.iter().copied().collect()).unwrap_or_default();
        if sessions.is_empty() {
            return;
        }
        let pool = self.services.pool.clone();
        // All of the agent's sessions in one transaction: after a failure
        // none has moved, so the retry finds every one still assigned.
        let commit = async move {
            let mut conn = pool.get().await?;
            let requeued = conn
                .transaction(async |conn| {
                    let mut requeued = Vec::with_capacity(sessions.len());
                    for session_id in sessions {
                        let outcome =
                            queries::queue::requeue(conn, session_id, agent_id, None, "agent_disconnected", None)
                                .await?;
                        requeued.push((session_id, outcome));
                    }
                    Ok::<_, diesel::result::Error>(requeued)
                })
                .await?;
            Ok::<_, AppError>(requeued)
        };
        ctx.wait(commit.into_actor(self).map(move |outcome, act, ctx| {
            let requeued = match outcome {
                Ok(requeued) => requeued,
                Err(error) => {
                    log::error!("agent {agent_id} left but their sessions could not be requeued yet: {error}");
                    ctx.notify_later(AgentGone { agent_id }, REQUEUE_RETRY);
                    return;
                }
            };
            let mut moved = Vec::new();
            for (session_id, outcome) in requeued {
                act.release(agent_id, session_id, "agent_left");
                let Some((priority, requested_at, customer_name)) = outcome else { continue };
                act.insert(Waiting {
                    session_id,
                    priority,
                    reason: Some("agent_disconnected".to_owned()),
                    requested_at,
                    customer_name,
                    preview: None,
                    skip_agent: None,
                });
                moved.push(session_id);
            }
            for session_id in moved {
                if let Some(position) = act.position(session_id) {
                    act.told_positions.insert(session_id, position);
                    act.registry.do_send(ToSession { session_id, wake: true, mail: Requeued { position }.into() });
                }
            }
            act.publish();
            act.try_assign(ctx);
        }));
    }
}

impl Handler<SendBoard> for QueueActor {
    type Result = ();

    fn handle(&mut self, SendBoard { agent_id, agent, socket_id }: SendBoard, _: &mut Self::Context) {
        // The board as agents were last shown it: the changes that follow apply to it.
        let mut sessions: Vec<QueueItem> = self.shown.values().cloned().collect();
        sessions.sort_by_key(|item| (item.priority.rank(), item.waiting_since));
        for (index, item) in sessions.iter_mut().enumerate() {
            item.position = index + 1;
        }
        let frame = ServerEvent::QueueUpdate { sessions }.frame(None);
        agent.do_send(QueueBoard { frame, to: Some(socket_id) });
        self.watchers.insert(agent_id, agent);
    }
}

impl Handler<QueueSnapshot> for QueueActor {
    type Result = MessageResult<QueueSnapshot>;

    fn handle(&mut self, _: QueueSnapshot, _: &mut Self::Context) -> Self::Result {
        MessageResult(Ok(self.items()))
    }
}

impl Handler<PositionOf> for QueueActor {
    type Result = Option<usize>;

    fn handle(&mut self, PositionOf(session_id): PositionOf, _: &mut Self::Context) -> Self::Result {
        self.position(session_id)
    }
}

impl Handler<Preview> for QueueActor {
    type Result = ();

    fn handle(&mut self, Preview { session_id, text }: Preview, _: &mut Self::Context) {
        if let Some(entry) = self.waiting.iter_mut().find(|entry| entry.session_id == session_id) {
            entry.preview = Some(preview(&text));
            self.publish();
        }
    }
}

impl Handler<Reprioritize> for QueueActor {
    type Result = ();

    fn handle(&mut self, Reprioritize { session_id, priority }: Reprioritize, ctx: &mut Self::Context) {
        let Some(index) = self.waiting.iter().position(|entry| entry.session_id == session_id) else { return };
        let mut entry = self.waiting.remove(index);
        entry.priority = priority;
        self.insert(entry);
        self.publish();
        self.try_assign(ctx);
    }
}
