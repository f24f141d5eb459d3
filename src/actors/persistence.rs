//! The message writer: one actor that stores chat messages in batches, over
//! several lanes at once.
//!
//! Sessions are spread over lanes by id, and each lane commits one batch at a
//! time, so a session's messages are stored in the order they arrived while
//! the lanes commit side by side on their own connections. Messages that
//! arrive while a lane commits wait for its next batch, so under load many
//! messages share a commit; when idle a message commits after at most
//! `flush_interval`. Each sender is answered only after its batch's
//! transaction has committed, and with an error, never an acknowledgement,
//! when it did not.
//!
//! A session whose row someone else has locked is set aside (`SKIP LOCKED`)
//! and retried, so one locked row holds up its own messages only; they are
//! refused with `storage_timeout` once they have waited `deadline`.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::db::models::NewChatMessage;
use crate::db::queries::messages::{self, Outcome, Persisted};
use crate::db::Pool;
use crate::error::{AppError, ErrorCode};
use crate::telemetry::Metrics;
use diesel_async::AsyncConnection;

type Reply = Result<Persisted, AppError>;

/// Store one message; the reply comes after the commit.
#[derive(Message)]
#[rtype(result = "Result<Persisted, AppError>")]
pub struct PersistMessage(pub NewChatMessage);

/// Resolves once every message received so far has been committed or refused.
/// Used at shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// How the writer batches, and what it refuses.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Most messages in one transaction.
    pub batch_size: usize,
    /// Longest a message waits for company when its lane is idle.
    pub flush_interval: Duration,
    /// Batches committing at once, each on its own connection.
    pub lanes: usize,
    /// Messages a lane holds before it refuses more with `overloaded`.
    pub queue_limit: usize,
    /// Longest a message may wait to be stored before it is refused with `storage_timeout`.
    pub deadline: Duration,
}

impl WriterSettings {
    pub fn new(batch_size: usize, flush_interval: Duration) -> Self {
        WriterSettings { batch_size, flush_interval, lanes: 4, queue_limit: 10_000, deadline: Duration::from_secs(5) }
    }
}

/// How soon a lane looks again at sessions it found locked.
const RETRY_LOCKED_AFTER: Duration = Duration::from_millis(50);
/// How often the writer's lag is measured for `/health` and `/metrics`.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

struct Waiting {
    message: NewChatMessage,
    reply: oneshot::Sender<Reply>,
    since: Instant,
}

/// The half of a `Waiting` that stays with the writer while its message commits.
struct Sender {
    reply: oneshot::Sender<Reply>,
    since: Instant,
}

impl Waiting {
    fn answer(self, reply: Reply) {
        let _ = self.reply.send(reply);
    }
}

#[derive(Default)]
struct Lane {
    pending: VecDeque<Waiting>,
    /// Messages of sessions whose rows were locked, in arrival order.
    set_aside: VecDeque<Waiting>,
    /// Sessions with messages set aside: their later messages wait behind them.
    locked: HashSet<Uuid>,
    committing: bool,
    flush_timer: Option<SpawnHandle>,
    retry_timer: Option<SpawnHandle>,
}

impl Lane {
    fn len(&self) -> usize {
        self.pending.len() + self.set_aside.len()
    }

    fn oldest(&self) -> Option<Instant> {
        self.pending.iter().chain(self.set_aside.iter()).map(|waiting| waiting.since).min()
    }
}

pub struct MessageWriter {
    pool: Pool,
    metrics: Option<Arc<Metrics>>,
    settings: WriterSettings,
    lanes: Vec<Lane>,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl MessageWriter {
    pub fn new(pool: Pool, settings: WriterSettings) -> Self {
        let settings = WriterSettings {
            batch_size: settings.batch_size.max(1),
            lanes: settings.lanes.max(1),
            queue_limit: settings.queue_limit.max(1),
            ..settings
        };
        let lanes = (0..settings.lanes).map(|_| Lane::default()).collect();
        MessageWriter { pool, metrics: None, settings, lanes, drain_waiters: Vec::new() }
    }

    /// Records batch sizes, commit times, stored messages, lag and failures.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn lane_of(&self, session_id: Uuid) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        session_id.hash(&mut hasher);
        (hasher.finish() % self.lanes.len() as u64) as usize
    }

    fn failed(&self, reason: &str, count: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.writer_failed(reason, count);
        }
    }

    fn sample_lag(&self) {
        if let Some(metrics) = &self.metrics {
            let oldest = self.lanes.iter().filter_map(Lane::oldest).min();
            metrics.writer_lag_seconds.set(oldest.map_or(0.0, |since| since.elapsed().as_secs_f64()));
            let locked: usize = self.lanes.iter().map(|lane| lane.locked.len()).sum();
            metrics.writer_locked_sessions.set(locked as i64);
        }
    }

    /// Refuses every set-aside message that has waited past the deadline.
    fn expire(&mut self, lane: usize) {
        let deadline = self.settings.deadline;
        let set_aside = std::mem::take(&mut self.lanes[lane].set_aside);
        let (expired, kept): (VecDeque<Waiting>, VecDeque<Waiting>) =
            set_aside.into_iter().partition(|waiting| waiting.since.elapsed() >= deadline);
        self.lanes[lane].set_aside = kept;
        if expired.is_empty() {
            return;
        }
        log::warn!("{} message(s) not stored: their sessions stayed locked for {deadline:?}", expired.len());
        self.failed("timed_out", expired.len());
        let error = AppError::new(
            ErrorCode::StorageTimeout,
            "the message could not be stored in time; send it again with the same clientMsgId",
        );
        for waiting in expired {
            waiting.answer(Err(error.clone()));
        }
    }

    fn flush(&mut self, lane: usize, ctx: &mut Context<Self>) {
        if let Some(timer) = self.lanes[lane].flush_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.lanes[lane].committing {
            return;
        }
        self.expire(lane);
        let batch_size = self.settings.batch_size;
        let state = &mut self.lanes[lane];
        let mut batch = Vec::with_capacity(state.pending.len().min(batch_size));
        while batch.len() < batch_size {
            let Some(waiting) = state.pending.pop_front() else { break };
            if state.locked.contains(&waiting.message.session_id) {
                state.set_aside.push_back(waiting);
            } else {
                batch.push(waiting);
            }
        }
        if batch.is_empty() {
            self.notify_drained();
            return;
        }
        state.committing = true;
        let pool = self.pool.clone();
        let metrics = self.metrics.clone();
        // The messages travel to the commit and back, not copied; who to
        // answer stays here.
        let (messages, senders): (Vec<NewChatMessage>, Vec<Sender>) = batch
            .into_iter()
            .map(|waiting| (waiting.message, Sender { reply: waiting.reply, since: waiting.since }))
            .unzip();
        let commit = async move {
            let started = Instant::now();
            let outcomes = commit_batch(&pool, &messages).await;
            log::debug!("message batch of {} committed in {:?}", messages.len(), started.elapsed());
            if let Some(metrics) = &metrics {
                metrics.writer_batch_size.observe(messages.len() as f64);
                metrics.writer_commit_seconds.observe(started.elapsed().as_secs_f64());
            }
            (messages, outcomes)
        };
        // `spawn`, not `wait`: the mailbox keeps taking messages during the commit.
        ctx.spawn(commit.into_actor(self).map(move |(messages, outcomes), writer, ctx| {
            let batch = messages
                .into_iter()
                .zip(senders)
                .map(|(message, Sender { reply, since })| Waiting { message, reply, since })
                .collect();
            writer.settle(lane, batch, outcomes, ctx);
            writer.lanes[lane].committing = false;
            writer.flush(lane, ctx);
        }));
    }

    /// Answers a committed (or failed) batch and sets aside what found its session locked.
    fn settle(
        &mut self,
        lane: usize,
        batch: Vec<Waiting>,
        outcomes: Result<Vec<Outcome>, AppError>,
        ctx: &mut Context<Self>,
    ) {
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(error) => {
                log::error!("message batch of {} not stored: {error}", batch.len());
                self.failed("batch_failed", batch.len());
                for waiting in batch {
                    waiting.answer(Err(error.clone()));
                }
                return;
            }
        };
        let mut newly_locked = false;
        for (waiting, outcome) in batch.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Done(answer) => {
                    if let (Some(metrics), Ok(persisted)) = (&self.metrics, &answer) {
                        if !persisted.resent {
                            metrics.messages.with_label_values(&[persisted.message.sender_type.as_str()]).inc();
                        }
                    }
                    waiting.answer(answer);
                }
                Outcome::Locked => {
                    let state = &mut self.lanes[lane];
                    newly_locked |= state.locked.insert(waiting.message.session_id);
                    state.set_aside.push_back(waiting);
                }
            }
        }
        // Later messages of a set-aside session wait behind the earlier ones.
        let state = &mut self.lanes[lane];
        if newly_locked && !state.locked.is_empty() {
            let pending = std::mem::take(&mut state.pending);
            for waiting in pending {
                if state.locked.contains(&waiting.message.session_id) {
                    state.set_aside.push_back(waiting);
                } else {
                    state.pending.push_back(waiting);
                }
            }
        }
        if !state.set_aside.is_empty() && state.retry_timer.is_none() {
            state.retry_timer = Some(ctx.run_later(RETRY_LOCKED_AFTER, move |writer, ctx| {
                let state = &mut writer.lanes[lane];
                state.retry_timer = None;
                // Set-aside messages go first again, in the order they came.
                let mut set_aside = std::mem::take(&mut state.set_aside);
                set_aside.extend(state.pending.drain(..));
                state.pending = set_aside;
                state.locked.clear();
                writer.flush(lane, ctx);
            }));
        }
    }

    fn notify_drained(&mut self) {
        if self.lanes.iter().all(|lane| lane.len() == 0 && !lane.committing) {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

async fn commit_batch(pool: &Pool, batch: &[NewChatMessage]) -> Result<Vec<Outcome>, AppError> {
    let mut conn = pool.get().await?;
    let outcomes = conn
        .transaction(async |conn| messages::insert_batch(conn, batch).await)
        .await
        .map_err(AppError::database_unavailable)?;
    Ok(outcomes)
}

impl Actor for MessageWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(LAG_SAMPLE_INTERVAL, |writer, _| {
            writer.sample_lag();
            for lane in 0..writer.lanes.len() {
                writer.expire(lane);
            }
            writer.notify_drained();
        });
    }
}

impl Handler<PersistMessage> for MessageWriter {
    type Result = ResponseFuture<Reply>;

    fn handle(&mut self, PersistMessage(message): PersistMessage, ctx: &mut Self::Context) -> Self::Result {
        let lane = self.lane_of(message.session_id);
        if self.lanes[lane].len() >= self.settings.queue_limit {
            self.failed("refused", 1);
            let error = AppError::new(ErrorCode::Overloaded, "too many messages are waiting to be stored; try again");
            return Box::pin(async move { Err(error) });
        }
        let (reply, answer) = oneshot::channel();
        let state = &mut self.lanes[lane];
        state.pending.push_back(Waiting { message, reply, since: Instant::now() });
        if state.pending.len() >= self.settings.batch_size {
            self.flush(lane, ctx);
        } else if state.flush_timer.is_none() && !state.committing {
            state.flush_timer = Some(ctx.run_later(self.settings.flush_interval, move |writer, ctx| {
                writer.lanes[lane].flush_timer = None;
                writer.flush(lane, ctx);
            }));
        }
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(AppError::new(ErrorCode::DatabaseUnavailable, "the message writer stopped")))
        })
    }
}

impl Handler<Drain> for MessageWriter {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) -> Self::Result {
        let (done, drained) = oneshot::channel();
        self.drain_waiters.push(done);
        for lane in 0..self.lanes.len() {
            self.flush(lane, ctx);
        }
        self.notify_drained();
        Box::pin(async move {
            let _ = drained.await;
        })
    }
}
