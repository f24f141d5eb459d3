//! The message writer: one actor that stores chat messages in batches.
//!
//! Messages that arrive while a transaction commits wait for the next one, so
//! under load many messages share a commit, and when idle a message commits
//! after at most `flush_interval`. Each sender is answered only after its
//! batch's transaction has committed, and with an error, never an
//! acknowledgement, when it did not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::db::models::NewChatMessage;
use crate::db::queries::messages::{self, Persisted};
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

pub struct MessageWriter {
    pool: Pool,
    metrics: Option<Arc<Metrics>>,
    batch_size: usize,
    flush_interval: Duration,
    pending: Vec<NewChatMessage>,
    replies: Vec<oneshot::Sender<Reply>>,
    committing: bool,
    flush_timer: Option<SpawnHandle>,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl MessageWriter {
    pub fn new(pool: Pool, batch_size: usize, flush_interval: Duration) -> Self {
        MessageWriter {
            pool,
            metrics: None,
            batch_size: batch_size.max(1),
            flush_interval,
            pending: Vec::new(),
            replies: Vec::new(),
            committing: false,
            flush_timer: None,
            drain_waiters: Vec::new(),
        }
    }

    /// Records batch sizes, commit times and stored messages.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.flush_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.committing {
            return;
        }
        if self.pending.is_empty() {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
            return;
        }
        let take = self.pending.len().min(self.batch_size);
        let batch: Vec<NewChatMessage> = self.pending.drain(..take).collect();
        let replies: Vec<oneshot::Sender<Reply>> = self.replies.drain(..take).collect();
        self.committing = true;
        let pool = self.pool.clone();
        let metrics = self.metrics.clone();
        let commit = async move {
            let started = Instant::now();
            let size = batch.len();
            let answers = commit_batch(&pool, &batch).await;
            log::debug!("message batch of {size} committed in {:?}", started.elapsed());
            if let Some(metrics) = &metrics {
                metrics.writer_batch_size.observe(size as f64);
                metrics.writer_commit_seconds.observe(started.elapsed().as_secs_f64());
            }
            match answers {
                Ok(answers) => {
                    if let Some(metrics) = &metrics {
                        for persisted in answers.iter().flatten().filter(|persisted| !persisted.resent) {
                            metrics.messages.with_label_values(&[persisted.message.sender_type.as_str()]).inc();
                        }
                    }
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        let _ = reply.send(answer);
                    }
                }
                Err(error) => {
                    log::error!("message batch of {size} not stored: {error}");
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        };
        // `spawn`, not `wait`: the mailbox keeps taking messages during the commit.
        ctx.spawn(commit.into_actor(self).map(|(), writer, ctx| {
            writer.committing = false;
            writer.flush(ctx);
        }));
    }
}

async fn commit_batch(pool: &Pool, batch: &[NewChatMessage]) -> Result<Vec<Reply>, AppError> {
    let mut conn = pool.get().await?;
    let answers = conn
        .transaction(async |conn| messages::insert_batch(conn, batch).await)
        .await
        .map_err(AppError::database_unavailable)?;
    Ok(answers)
}

impl Actor for MessageWriter {
    type Context = Context<Self>;
}

impl Handler<PersistMessage> for MessageWriter {
    type Result = ResponseFuture<Reply>;

    fn handle(&mut self, PersistMessage(message): PersistMessage, ctx: &mut Self::Context) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.pending.push(message);
        self.replies.push(reply);
        if self.pending.len() >= self.batch_size {
            self.flush(ctx);
        } else if self.flush_timer.is_none() && !self.committing {
            self.flush_timer = Some(ctx.run_later(self.flush_interval, |writer, ctx| {
                writer.flush_timer = None;
                writer.flush(ctx);
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
        self.flush(ctx);
        Box::pin(async move {
            let _ = drained.await;
        })
    }
}
