//! The handoff queue: waiting sessions by priority (high, normal, low), then
//! by how long they have waited. It assigns them to online agents with free
//! capacity, least loaded first, and is the only actor that changes who has a
//! session, so assignment decisions never race. Every change is written to
//! `queue_entries` / `chat_sessions` first, with a conditional update that
//! only one assignment can win.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::actors::agent::AgentActor;
use crate::actors::messages::*;
use crate::actors::registry::SessionRegistry;
use crate::actors::Services;
use crate::db::queries::queue::Assignment;
use crate::db::{self, queries};
use crate::domain::{Presence, Priority, SessionStatus};
use crate::error::{AppError, ErrorCode};
use crate::protocol::server::{OfflineReason, QueueItem, ServerEvent};

const PREVIEW_CHARS: usize = 140;
/// Sessions given out in one committed statement, at most.
const ASSIGN_BATCH: usize = 500;
/// A session whose row another transaction held is offered again after this.
const BUSY_RETRY: Duration = Duration::from_millis(100);
/// The board's changes go out at most this often, and the customers' places
/// at most this often: with thousands waiting, each change on its own would
/// tell everyone everything again (and a customer needs no ten places a second).
const BOARD_INTERVAL: Duration = Duration::from_millis(100);
const POSITION_INTERVAL: Duration = Duration::from_secs(1);

/// News told at most once per `interval`: the first change is told at once
/// (after the message at hand), later ones together when the interval is up.
struct Cadence {
    interval: Duration,
    due: bool,
    scheduled: bool,
    told_at: Option<Instant>,
}

impl Cadence {
    fn every(interval: Duration) -> Self {
        Cadence { interval, due: false, scheduled: false, told_at: None }
    }

    /// There is news; returns how long to wait before telling it, unless a
    /// telling is already scheduled.
    fn mark(&mut self) -> Option<Duration> {
        self.due = true;
        if self.scheduled {
            return None;
        }
        self.scheduled = true;
        Some(self.told_at.map_or(Duration::ZERO, |at| self.interval.saturating_sub(at.elapsed())))
    }

    /// The scheduled time has come: whether there is still news to tell.
    fn start(&mut self) -> bool {
        self.scheduled = false;
        self.told_at = Some(Instant::now());
        std::mem::take(&mut self.due)
    }
}
/// Board items in one `queue:changed` frame, and ids of sessions that left:
/// many changes at once still make small frames.
const UPSERTS_PER_FRAME: usize = 8;
const REMOVALS_PER_FRAME: usize = 64;

struct Waiting {
    session_id: Uuid,
    priority: Priority,
    reason: Option<String>,
    requested_at: DateTime<Utc>,
    customer_name: String,
    preview: Option<String>,
    /// An agent who just handed this session back is not given it again.
    skip_agent: Option<Uuid>,
    /// Its row was held by another transaction: not offered before this.
    retry_at: Option<Instant>,
    /// The team it is for: its members get it first.
    team: Option<Uuid>,
    /// An offline request: the customer left a message and went; an agent
    /// picks it up by hand, it is never given out automatically.
    offline: bool,
    /// The customer was offered the offline form because no agent was online.
    offered: bool,
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
    /// When the board's changes and the customers' places are told (see `publish`).
    board_news: Cadence,
    position_news: Cadence,
    /// The whole board as `shown`, encoded once for every agent who joins
    /// before it changes (thousands waiting make megabytes).
    snapshot: Option<crate::protocol::server::Frame>,
    /// Each team's members, as stored (reloaded on `TeamsChanged`).
    teams: HashMap<Uuid, HashSet<Uuid>>,
    /// Since when no agent has been online (`None` while one is).
    no_agent_since: Option<DateTime<Utc>>,
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
            board_news: Cadence::every(BOARD_INTERVAL),
            position_news: Cadence::every(POSITION_INTERVAL),
            snapshot: None,
            teams: HashMap::new(),
            no_agent_since: Some(Utc::now()),
        }
    }

    /// Puts a session in its place; returns that place among the live chats.
    fn insert(&mut self, entry: Waiting) -> usize {
        let key = (entry.priority.rank(), entry.requested_at);
        let index = self.waiting.partition_point(|other| (other.priority.rank(), other.requested_at) <= key);
        self.waiting.insert(index, entry);
        self.waiting[..=index].iter().filter(|entry| !entry.offline).count()
    }

    /// A live chat's place in line; offline requests ahead of it do not count
    /// (they wait for an agent to pick them up, not for their turn).
    fn position(&self, session_id: Uuid) -> Option<usize> {
        let mut live = 0;
        for entry in &self.waiting {
            if !entry.offline {
                live += 1;
            }
            if entry.session_id == session_id {
                return (!entry.offline).then_some(live);
            }
        }
        None
    }

    /// On the board, live or offline.
    fn is_queued(&self, session_id: Uuid) -> bool {
        self.waiting.iter().any(|entry| entry.session_id == session_id)
    }

    /// Offers the offline form to each live chat that has waited
    /// `OFFLINE_AFTER_NO_AGENT_MS` while no agent was online, once.
    fn offer_offline(&mut self) {
        let (Some(after), Some(since)) = (self.services.timing.offline_after_no_agent, self.no_agent_since) else {
            return;
        };
        let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        let now = Utc::now();
        for entry in self.waiting.iter_mut().filter(|entry| !entry.offline && !entry.offered) {
            if now - since.max(entry.requested_at) >= after {
                entry.offered = true;
                self.registry.do_send(ToSession {
                    session_id: entry.session_id,
                    wake: false,
                    mail: OfferOffline { reason: OfflineReason::NoAgent }.into(),
                });
            }
        }
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
                team_id: entry.team,
                status: if entry.offline { SessionStatus::Offline } else { SessionStatus::Waiting },
            })
            .collect()
    }

    /// Tells every agent the new board and every moved session its new
    /// place: soon, together with whatever else changes meanwhile, at most
    /// every `BOARD_INTERVAL` for the board and `POSITION_INTERVAL` for places.
    fn publish(&mut self, ctx: &mut Context<Self>) {
        if let Some(wait) = self.board_news.mark() {
            ctx.run_later(wait, |act, _| {
                if act.board_news.start() {
                    act.publish_now();
                }
            });
        }
        if let Some(wait) = self.position_news.mark() {
            ctx.run_later(wait, |act, _| {
                if act.position_news.start() {
                    act.tell_positions();
                }
            });
        }
    }

    /// Tells the agents the board's changes now.
    fn publish_now(&mut self) {
        self.board_news.due = false;
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
            self.snapshot = None;
        }
        let frames = upserted
            .chunks(UPSERTS_PER_FRAME)
            .map(|items| ServerEvent::QueueChanged { upserted: items.to_vec(), removed: Vec::new() })
            .chain(
                removed
                    .chunks(REMOVALS_PER_FRAME)
                    .map(|ids| ServerEvent::QueueChanged { upserted: Vec::new(), removed: ids.to_vec() }),
            )
            .map(|event| event.frame(None));
        for frame in frames {
            for agent in self.watchers.values() {
                agent.do_send(QueueBoard { frame: frame.clone(), to: None });
            }
        }
    }

    /// Tells each waiting customer whose place changed their new one.
    fn tell_positions(&mut self) {
        let mut still_waiting = HashMap::with_capacity(self.waiting.len());
        for (index, entry) in self.waiting.iter().filter(|entry| !entry.offline).enumerate() {
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

    /// The online agent with the most room, excluding `skip`; `planned`
    /// counts sessions about to be given to each agent.
    /// The agent with the most room for a chat. A chat for a team waits for
    /// that team's agents while any of them is online; only a team with
    /// nobody online lets others take it, so no chat is stranded.
    fn best_agent(&self, entry: &Waiting, planned: &HashMap<Uuid, usize>) -> Option<Uuid> {
        let load = |id: &Uuid| self.load(*id) + planned.get(id).copied().unwrap_or(0);
        let members = entry.team.and_then(|team| self.teams.get(&team));
        let team_online = members.is_some_and(|members| {
            members.iter().any(|id| self.agents.get(id).is_some_and(|slot| slot.presence == Presence::Online))
        });
        self.agents
            .iter()
            .filter(|(id, slot)| {
                slot.presence == Presence::Online && Some(**id) != entry.skip_agent && load(id) < slot.max_concurrent
            })
            .filter(|(id, _)| !team_online || members.is_some_and(|members| members.contains(id)))
            .min_by_key(|(id, slot)| (load(id), std::cmp::Reverse(slot.max_concurrent), **id))
            .map(|(id, _)| *id)
    }

    /// The next sessions to give out, in serving order, each to the agent
    /// with the most room once the ones before it are counted; and whether
    /// a session was passed over until its retry.
    fn next_batch(&self) -> (Vec<(Uuid, Uuid)>, bool) {
        let now = Instant::now();
        let mut planned: HashMap<Uuid, usize> = HashMap::new();
        let mut pairs = Vec::new();
        let mut deferred = false;
        for entry in &self.waiting {
            if pairs.len() == ASSIGN_BATCH {
                break;
            }
            if entry.offline {
                continue;
            }
            if entry.retry_at.is_some_and(|at| at > now) {
                deferred = true;
                continue;
            }
            match self.best_agent(entry, &planned) {
                Some(agent) => {
                    *planned.entry(agent).or_default() += 1;
                    pairs.push((entry.session_id, agent));
                }
                // Nobody has room: nothing later can be given out either.
                None if entry.skip_agent.is_none() && entry.team.is_none() => break,
                None => {}
            }
        }
        (pairs, deferred)
    }

    /// Takes sessions off the waiting list in one pass; those `assigned`
    /// count in the waiting-time metric.
    fn take_out(&mut self, leaving: &HashSet<Uuid>, assigned: bool) {
        let now = Utc::now();
        let metric = &self.services.metrics.queue_wait_seconds;
        self.waiting.retain(|entry| {
            if !leaving.contains(&entry.session_id) {
                return true;
            }
            if assigned {
                metric.observe((now - entry.requested_at).num_milliseconds().max(0) as f64 / 1000.0);
            }
            false
        });
    }

    /// Records a committed assignment and tells the agent.
    fn hand_over(&mut self, session_id: Uuid, agent_id: Uuid, pickup: Option<(SocketId, Reply)>) {
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

    /// Assigns waiting sessions while an agent has room, a batch per
    /// committed statement, in serving order.
    fn try_assign(&mut self, ctx: &mut Context<Self>) {
        if self.assigning {
            return;
        }
        let (pairs, deferred) = self.next_batch();
        if pairs.is_empty() {
            if deferred {
                ctx.run_later(BUSY_RETRY, |act, ctx| act.try_assign(ctx));
            }
            return;
        }
        self.assigning = true;
        let commit = commit_assignments(self.services.pool.clone(), pairs.clone());
        ctx.wait(commit.into_actor(self).map(move |outcome, act, ctx| {
            act.assigning = false;
            match outcome {
                Ok(outcomes) => act.settle(&pairs, &outcomes, ctx),
                Err(error) => {
                    log::error!("assigning {} sessions failed: {error}; retrying shortly", pairs.len());
                    ctx.run_later(Duration::from_secs(1), |act, ctx| act.try_assign(ctx));
                    return;
                }
            }
            act.try_assign(ctx);
        }));
    }

    /// Applies a batch's outcomes: assigned sessions go to their agents in
    /// serving order, gone ones leave the queue, busy ones wait for a retry.
    fn settle(&mut self, pairs: &[(Uuid, Uuid)], outcomes: &HashMap<Uuid, Assignment>, ctx: &mut Context<Self>) {
        let outcome_of = |session_id: &Uuid| outcomes.get(session_id).copied().unwrap_or(Assignment::Busy);
        let (mut assigned, mut gone, mut busy) = (HashSet::new(), HashSet::new(), HashSet::new());
        for (session_id, _) in pairs {
            match outcome_of(session_id) {
                Assignment::Assigned(_) => assigned.insert(*session_id),
                Assignment::Gone => gone.insert(*session_id),
                Assignment::Busy => busy.insert(*session_id),
            };
        }
        if !busy.is_empty() {
            let retry_at = Instant::now() + BUSY_RETRY;
            for entry in self.waiting.iter_mut().filter(|entry| busy.contains(&entry.session_id)) {
                entry.retry_at = Some(retry_at);
            }
        }
        self.take_out(&assigned, true);
        self.take_out(&gone, false);
        // In serving order, each once, to the agent the database recorded.
        for (session_id, _) in pairs {
            if let (true, Assignment::Assigned(agent_id)) = (assigned.remove(session_id), outcome_of(session_id)) {
                log::info!("session {session_id} assigned to agent {agent_id}");
                self.hand_over(*session_id, agent_id, None);
            }
        }
        self.publish(ctx);
    }
}

/// Gives sessions to agents in the database (see `queries::queue::assign`).
async fn commit_assignments(
    pool: crate::db::Pool,
    pairs: Vec<(Uuid, Uuid)>,
) -> Result<HashMap<Uuid, Assignment>, AppError> {
    db::run(&pool, async |conn| queries::queue::assign(conn, &pairs).await).await
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
        if let Some(after) = self.services.timing.offline_after_no_agent {
            let every = (after / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
            ctx.run_interval(every, |act, _| act.offer_offline());
        }
        let pool = self.services.pool.clone();
        let load = async move {
            db::run(&pool, async |conn| {
                let waiting = queries::queue::waiting(conn).await?;
                let assigned = queries::sessions::assigned_pairs(conn).await?;
                let teams = queries::teams::membership(conn).await?;
                Ok((waiting, assigned, teams))
            })
            .await
        };
        ctx.wait(load.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok((waiting, assigned, teams)) => {
                act.teams = teams;
                for row in waiting {
                    act.insert(Waiting {
                        session_id: row.session_id,
                        priority: row.priority,
                        reason: row.reason,
                        requested_at: row.requested_at,
                        customer_name: row.customer_name,
                        preview: row.preview.as_deref().map(preview),
                        skip_agent: None,
                        retry_at: None,
                        team: row.team_id,
                        offline: row.offline,
                        offered: row.offline,
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
                act.told_positions =
                    act.waiting.iter().filter(|e| !e.offline).enumerate().map(|(i, e)| (e.session_id, i + 1)).collect();
                act.publish(ctx);
            }
            Err(error) => log::error!("the queue could not be rebuilt from the database: {error}"),
        }));
    }
}

impl Handler<TeamsChanged> for QueueActor {
    type Result = ();

    /// Reads the teams again beside the mailbox; assignments go on meanwhile with the old ones.
    fn handle(&mut self, _: TeamsChanged, ctx: &mut Self::Context) {
        let pool = self.services.pool.clone();
        let load = async move { db::run(&pool, async |conn| queries::teams::membership(conn).await).await };
        ctx.spawn(load.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok(teams) => {
                act.teams = teams;
                act.try_assign(ctx);
            }
            Err(error) => {
                log::warn!("the teams could not be read again: {error}; retrying");
                ctx.notify_later(TeamsChanged, Duration::from_secs(1));
            }
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
                retry_at: None,
                team: request.team,
                offline: false,
                offered: false,
            });
            // The session tells its customer its position itself, in its reply.
            act.told_positions.insert(session_id, position);
            act.publish(ctx);
            ctx.run_later(std::time::Duration::ZERO, |act, ctx| act.try_assign(ctx));
            Ok(position)
        })))
    }
}

impl Handler<Pickup> for QueueActor {
    type Result = ();

    fn handle(&mut self, pickup: Pickup, ctx: &mut Self::Context) {
        self.pickup(pickup, PICKUP_TRIES, ctx);
    }
}

/// How often a pickup is tried while another transaction holds the chat's
/// row (`BUSY_RETRY` apart) before the agent is told to try again.
const PICKUP_TRIES: u32 = 25;

impl QueueActor {
    fn pickup(
        &mut self,
        Pickup { agent_id, session_id, socket_id, reply }: Pickup,
        tries: u32,
        ctx: &mut Context<Self>,
    ) {
        let Some(slot) = self.agents.get(&agent_id) else {
            return reply.fail(&AppError::new(ErrorCode::AgentNotJoined, "send agent:join first"));
        };
        if self.load(agent_id) >= slot.max_concurrent {
            return reply.fail(&AppError::new(
                ErrorCode::AgentUnavailable,
                format!("you already have {} chats, your most at once", slot.max_concurrent),
            ));
        }
        if !self.is_queued(session_id) {
            return reply.fail(&match self.owner_of(session_id) {
                Some(_) => AppError::new(ErrorCode::AlreadyAssigned, "another agent already has this session"),
                None => AppError::new(ErrorCode::NotWaiting, "that session is not waiting in the queue"),
            });
        }
        let commit = commit_assignments(self.services.pool.clone(), vec![(session_id, agent_id)]);
        ctx.wait(commit.into_actor(self).map(move |outcome, act, ctx| {
            match outcome.map(|outcomes| outcomes.get(&session_id).copied()) {
                Ok(Some(Assignment::Assigned(_))) => {
                    log::info!("session {session_id} picked up by agent {agent_id}");
                    act.take_out(&HashSet::from([session_id]), true);
                    act.hand_over(session_id, agent_id, Some((socket_id, reply)));
                }
                Ok(Some(Assignment::Busy)) if tries > 1 => {
                    let again = Pickup { agent_id, session_id, socket_id, reply };
                    ctx.run_later(BUSY_RETRY, move |act, ctx| act.pickup(again, tries - 1, ctx));
                    return;
                }
                Ok(Some(Assignment::Busy)) => {
                    let mut error = AppError::new(ErrorCode::StorageTimeout, "this chat is busy; pick it up again");
                    error.retry_after = Some(1);
                    return reply.fail(&error);
                }
                Ok(_) => {
                    act.take_out(&HashSet::from([session_id]), false);
                    reply.fail(&AppError::new(ErrorCode::AlreadyAssigned, "another agent already has this session"));
                }
                Err(error) => return reply.fail(&error),
            }
            act.publish(ctx);
            act.try_assign(ctx);
        }));
    }
}

impl Handler<TransferSession> for QueueActor {
    type Result = AtomicResponse<Self, Result<TransferOutcome, AppError>>;

    fn handle(&mut self, transfer: TransferSession, _: &mut Self::Context) -> Self::Result {
        let TransferSession { session_id, customer_name, from_agent, to_agent, to_team, priority, reason, unanswered } =
            transfer;
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
                act.hand_over(session_id, to_agent, None);
                Ok(TransferOutcome::Reassigned { agent_id: to_agent })
            })));
        }
        // An unanswered customer keeps their first place in line; a transfer queues anew.
        let requested_at = (!unanswered).then(Utc::now);
        let released_as = if unanswered { "no_reply" } else { "transferred" };
        let why = reason.clone().unwrap_or_else(|| released_as.to_owned());
        let commit = async move {
            let mut conn = pool.get().await?;
            let queued = conn
                .transaction(async |conn| {
                    let queued = queries::queue::requeue(
                        conn,
                        session_id,
                        from_agent,
                        Some(priority),
                        &why,
                        requested_at,
                        to_team,
                    )
                    .await?;
                    if queued.is_some() {
                        queries::analytics::transferred(conn, session_id).await?;
                    }
                    Ok::<_, diesel::result::Error>(queued)
                })
                .await
                .map_err(|error| match error {
                    // The one row `requeue` finds missing on purpose.
                    diesel::result::Error::NotFound => AppError::new(ErrorCode::NotFound, "no such team"),
                    other => other.into(),
                })?;
            Ok::<_, AppError>(queued)
        };
        AtomicResponse::new(Box::pin(commit.into_actor(self).map(move |outcome, act, ctx| {
            let Some(back) = outcome? else {
                return Err(AppError::new(ErrorCode::Conflict, "the session is no longer yours"));
            };
            act.release(from_agent, session_id, released_as);
            let position = act.insert(Waiting {
                session_id,
                priority: back.priority,
                reason: Some(reason.unwrap_or_else(|| released_as.to_owned())),
                requested_at: back.requested_at,
                customer_name,
                preview: None,
                skip_agent: Some(from_agent),
                retry_at: None,
                team: back.team,
                offline: false,
                offered: false,
            });
            act.told_positions.insert(session_id, position);
            act.publish(ctx);
            ctx.run_later(std::time::Duration::ZERO, |act, ctx| act.try_assign(ctx));
            Ok(TransferOutcome::Queued { position })
        })))
    }
}

impl Handler<SessionEnded> for QueueActor {
    type Result = ();

    fn handle(&mut self, SessionEnded { session_id, agent_id }: SessionEnded, ctx: &mut Self::Context) {
        let was_waiting = self.is_queued(session_id);
        self.waiting.retain(|entry| entry.session_id != session_id);
        if let Some(agent_id) = agent_id.or_else(|| self.owner_of(session_id)) {
            self.release(agent_id, session_id, "closed");
        }
        if was_waiting {
            self.publish(ctx);
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
        let anyone_online = self.agents.values().any(|slot| slot.presence == Presence::Online);
        match (anyone_online, self.no_agent_since) {
            (true, _) => self.no_agent_since = None,
            (false, None) => self.no_agent_since = Some(Utc::now()),
            (false, Some(_)) => {}
        }
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
                            queries::queue::requeue(conn, session_id, agent_id, None, "agent_disconnected", None, None)
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
                let Some(back) = outcome else { continue };
                act.insert(Waiting {
                    session_id,
                    priority: back.priority,
                    reason: Some("agent_disconnected".to_owned()),
                    requested_at: back.requested_at,
                    customer_name: back.customer_name,
                    preview: None,
                    skip_agent: None,
                    retry_at: None,
                    team: back.team,
                    offline: false,
                    offered: false,
                });
                moved.push(session_id);
            }
            for session_id in moved {
                if let Some(position) = act.position(session_id) {
                    act.told_positions.insert(session_id, position);
                    act.registry.do_send(ToSession { session_id, wake: true, mail: Requeued { position }.into() });
                }
            }
            act.publish(ctx);
            act.try_assign(ctx);
        }));
    }
}

impl Handler<SendBoard> for QueueActor {
    type Result = ();

    fn handle(&mut self, SendBoard { agent_id, agent, socket_id }: SendBoard, _: &mut Self::Context) {
        // Changes still gathering go out first, so the board is current and
        // the changes that follow apply to it.
        if self.board_news.due {
            self.publish_now();
        }
        let shown = &self.shown;
        let frame = self
            .snapshot
            .get_or_insert_with(|| {
                let mut sessions: Vec<QueueItem> = shown.values().cloned().collect();
                sessions.sort_by_key(|item| (item.priority.rank(), item.waiting_since));
                for (index, item) in sessions.iter_mut().enumerate() {
                    item.position = index + 1;
                }
                ServerEvent::QueueUpdate { sessions }.frame(None)
            })
            .clone();
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

    fn handle(&mut self, Preview { session_id, text }: Preview, ctx: &mut Self::Context) {
        if let Some(entry) = self.waiting.iter_mut().find(|entry| entry.session_id == session_id) {
            entry.preview = Some(preview(&text));
            self.publish(ctx);
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
        self.publish(ctx);
        self.try_assign(ctx);
    }
}

impl Handler<LeaveOffline> for QueueActor {
    type Result = AtomicResponse<Self, Result<(), AppError>>;

    /// The chat becomes an offline request: stored first (status, address,
    /// an active queue entry), then kept on the board where it was (or
    /// placed, if it was still with the bot), out of the automatic assignment.
    fn handle(&mut self, request: LeaveOffline, _: &mut Self::Context) -> Self::Result {
        let pool = self.services.pool.clone();
        let (session_id, priority, email) = (request.session_id, request.priority, request.email.clone());
        let commit = async move {
            let mut conn = pool.get().await?;
            let left = conn
                .transaction(async |conn| {
                    queries::queue::leave_offline(conn, session_id, priority, &email, Utc::now()).await
                })
                .await?;
            Ok::<_, AppError>(left)
        };
        AtomicResponse::new(Box::pin(commit.into_actor(self).map(move |outcome, act, ctx| {
            let Some(requested_at) = outcome? else {
                return Err(AppError::new(ErrorCode::Conflict, "this chat cannot take a message for later now"));
            };
            let shown = Some(preview(&request.preview));
            match act.waiting.iter_mut().find(|entry| entry.session_id == session_id) {
                Some(entry) => {
                    entry.offline = true;
                    entry.reason = Some("offline".to_owned());
                    entry.preview = shown;
                }
                None => {
                    act.insert(Waiting {
                        session_id,
                        priority,
                        reason: Some("offline".to_owned()),
                        requested_at,
                        customer_name: request.customer_name,
                        preview: shown,
                        skip_agent: None,
                        retry_at: None,
                        team: request.team,
                        offline: true,
                        offered: true,
                    });
                }
            }
            act.told_positions.remove(&session_id);
            act.publish(ctx);
            Ok(())
        })))
    }
}
