//! The history reader: one actor that reads the messages sessions show to a
//! joining socket, many sessions in one query.
//!
//! When a hundred agents each open a chat at once (a long queue meeting a
//! shift's start), or a node's customers all come back, every session would
//! otherwise send its own two queries. Requests that arrive while
//! `READS_AT_ONCE` reads are running wait for the next one, so an idle server
//! reads a history at once and a busy one reads many in each round trip.

use std::collections::{HashMap, VecDeque};

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::db::queries::messages::{self, Audience, Shown};
use crate::db::{self, Pool};
use crate::error::{AppError, ErrorCode};

type Reply = Result<Vec<Shown>, AppError>;

/// A session's messages after `after` that `audience` may see, oldest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<Shown>, AppError>")]
pub struct ReadHistory {
    pub session_id: Uuid,
    pub after: i64,
    pub audience: Audience,
}

/// Reads running at once, each on its own connection.
const READS_AT_ONCE: usize = 4;
/// Most requests answered by one read.
const REQUESTS_PER_READ: usize = 200;
/// Requests waiting beyond this are refused with `overloaded`.
const WAITING_LIMIT: usize = 20_000;

pub struct HistoryReader {
    pool: Pool,
    waiting: VecDeque<(ReadHistory, oneshot::Sender<Reply>)>,
    reading: usize,
}

impl HistoryReader {
    pub fn new(pool: Pool) -> Self {
        HistoryReader { pool, waiting: VecDeque::new(), reading: 0 }
    }

    fn read_next(&mut self, ctx: &mut Context<Self>) {
        while self.reading < READS_AT_ONCE && !self.waiting.is_empty() {
            let take = self.waiting.len().min(REQUESTS_PER_READ);
            let batch: Vec<_> = self.waiting.drain(..take).collect();
            let windows: Vec<(Uuid, i64)> =
                batch.iter().map(|(request, _)| (request.session_id, request.after)).collect();
            let pool = self.pool.clone();
            let read =
                async move { db::run(&pool, async |conn| messages::shown_after_each(conn, &windows).await).await };
            self.reading += 1;
            ctx.spawn(read.into_actor(self).map(move |outcome, reader, ctx| {
                reader.reading -= 1;
                answer(batch, outcome);
                reader.read_next(ctx);
            }));
        }
    }
}

/// Hands each request its session's messages after its seq.
fn answer(batch: Vec<(ReadHistory, oneshot::Sender<Reply>)>, outcome: Result<HashMap<Uuid, Vec<Shown>>, AppError>) {
    let mut by_session = match outcome {
        Ok(by_session) => by_session,
        Err(error) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
    };
    let mut asking: HashMap<Uuid, usize> = HashMap::new();
    for (request, _) in &batch {
        *asking.entry(request.session_id).or_default() += 1;
    }
    for (ReadHistory { session_id, after, audience }, reply) in batch {
        let left = asking.entry(session_id).or_default();
        *left -= 1;
        // The last request for a session takes its rows; earlier ones copy theirs.
        let rows = if *left == 0 {
            by_session.remove(&session_id).unwrap_or_default()
        } else {
            by_session.get(&session_id).cloned().unwrap_or_default()
        };
        let seen = rows.into_iter().filter(|shown| shown.message.seq > after && audience.sees(&shown.message));
        let _ = reply.send(Ok(seen.collect()));
    }
}

impl Actor for HistoryReader {
    type Context = Context<Self>;
}

impl Handler<ReadHistory> for HistoryReader {
    type Result = ResponseFuture<Reply>;

    fn handle(&mut self, request: ReadHistory, ctx: &mut Self::Context) -> Self::Result {
        if self.waiting.len() >= WAITING_LIMIT {
            let error = AppError::new(ErrorCode::Overloaded, "too many histories are waiting to be read; try again");
            return Box::pin(async move { Err(error) });
        }
        let (reply, answer) = oneshot::channel();
        self.waiting.push_back((request, reply));
        self.read_next(ctx);
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(AppError::new(ErrorCode::DatabaseUnavailable, "the history reader stopped")))
        })
    }
}
