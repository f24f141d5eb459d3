//! The durable handoff queue. The queue actor keeps it in memory and calls
//! these in step, so a restart rebuilds exactly what was waiting.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::schema::{chat_messages, chat_sessions, queue_entries, users};
use crate::db::PgConn;
use crate::domain::{Priority, SenderType, SessionStatus};

/// A waiting session as the queue actor rebuilds it.
#[derive(Debug, Clone)]
pub struct WaitingRow {
    pub session_id: Uuid,
    pub priority: Priority,
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub customer_name: String,
    pub preview: Option<String>,
    pub team_id: Option<Uuid>,
    /// An offline request rather than a live chat.
    pub offline: bool,
}

/// Puts a session in the queue: its status becomes waiting and an active
/// entry records why and since when. Run it in a transaction. A session with
/// the bot is queued when `from_agent` is `None`; an assigned one only when
/// it is still `from_agent`'s. Returns false when the session was not in
/// that state, so a concurrent change is never overwritten.
pub async fn enqueue(
    conn: &mut PgConn,
    session_id: Uuid,
    priority: Priority,
    reason: Option<&str>,
    requested_at: DateTime<Utc>,
    from_agent: Option<Uuid>,
) -> QueryResult<bool> {
    let expected = if from_agent.is_some() { SessionStatus::Assigned } else { SessionStatus::Bot };
    let changed = diesel::update(
        chat_sessions::table
            .find(session_id)
            .filter(chat_sessions::status.eq(expected))
            .filter(chat_sessions::assigned_agent_id.is_not_distinct_from(from_agent)),
    )
    .set((
        chat_sessions::status.eq(SessionStatus::Waiting),
        chat_sessions::priority.eq(priority),
        chat_sessions::assigned_agent_id.eq(None::<Uuid>),
        chat_sessions::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    if changed == 0 {
        return Ok(false);
    }
    diesel::insert_into(queue_entries::table)
        .values((
            queue_entries::session_id.eq(session_id),
            queue_entries::priority.eq(priority),
            queue_entries::reason.eq(reason),
            queue_entries::requested_at.eq(requested_at),
        ))
        .execute(conn)
        .await?;
    super::analytics::handoff_requested(conn, session_id).await?;
    Ok(true)
}

/// Makes a chat with the bot or waiting in the queue an offline request: its
/// status, the address to answer, and an active queue entry (a waiting
/// chat keeps its own and its place). Run it in a transaction. Returns
/// since when it waits, or `None` when the chat was in neither state.
pub async fn leave_offline(
    conn: &mut PgConn,
    session_id: Uuid,
    priority: Priority,
    email: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<DateTime<Utc>>> {
    let changed = diesel::update(
        chat_sessions::table
            .find(session_id)
            .filter(chat_sessions::status.eq_any([SessionStatus::Bot, SessionStatus::Waiting])),
    )
    .set((
        chat_sessions::status.eq(SessionStatus::Offline),
        chat_sessions::offline_email.eq(email),
        chat_sessions::assigned_agent_id.eq(None::<Uuid>),
        chat_sessions::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    if changed == 0 {
        return Ok(None);
    }
    let active =
        || queue_entries::table.filter(queue_entries::session_id.eq(session_id)).filter(queue_entries::is_active);
    let waiting_since: Option<DateTime<Utc>> =
        active().select(queue_entries::requested_at).first(conn).await.optional()?;
    if let Some(since) = waiting_since {
        diesel::update(active()).set(queue_entries::reason.eq("offline")).execute(conn).await?;
        return Ok(Some(since));
    }
    diesel::insert_into(queue_entries::table)
        .values((
            queue_entries::session_id.eq(session_id),
            queue_entries::priority.eq(priority),
            queue_entries::reason.eq("offline"),
            queue_entries::requested_at.eq(now),
        ))
        .execute(conn)
        .await?;
    super::analytics::handoff_requested(conn, session_id).await?;
    Ok(Some(now))
}

/// What became of one session of an assignment batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// It is this agent's now.
    Assigned(Uuid),
    /// It was no longer waiting (closed, or taken elsewhere): it never will be.
    Gone,
    /// Its row was locked by another transaction: try again shortly. A held
    /// row is passed over rather than holding up the rest of the queue.
    Busy,
}

#[derive(QueryableByName)]
struct AssignmentRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    /// The agent the session went to, when it was assigned.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    agent_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
}

/// Gives waiting sessions to agents, `(session, agent)` pairs, in one
/// statement: each session whose row is free and still waiting becomes its
/// agent's, its queue entry is closed and its first assignment recorded. A
/// session is given out only while it is waiting, so two assignments can
/// never both win. Returns each session's outcome (a session listed twice
/// is given to one of its agents, the one named in its outcome).
pub async fn assign(conn: &mut PgConn, pairs: &[(Uuid, Uuid)]) -> QueryResult<HashMap<Uuid, Assignment>> {
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    let sessions: Vec<Uuid> = pairs.iter().map(|(session, _)| *session).collect();
    let agents: Vec<Uuid> = pairs.iter().map(|(_, agent)| *agent).collect();
    let rows: Vec<AssignmentRow> = diesel::sql_query(
        "WITH pairs AS (
             SELECT DISTINCT ON (session_id) *
             FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS pair(session_id, agent_id, turn)
             ORDER BY session_id, turn
         ),
         locked AS (
             SELECT s.id, s.status FROM chat_sessions s WHERE s.id = ANY($1) ORDER BY s.id
             FOR NO KEY UPDATE SKIP LOCKED
         ),
         assigned AS (
             UPDATE chat_sessions s
             SET status = 'assigned', assigned_agent_id = pairs.agent_id, updated_at = now()
             FROM pairs, locked
             -- Offline requests are only ever offered to the agent who picks one up.
             WHERE s.id = pairs.session_id AND locked.id = s.id AND locked.status IN ('waiting', 'offline')
             RETURNING s.id, pairs.agent_id, pairs.turn
         ),
         entries AS (
             UPDATE queue_entries q
             SET is_active = false,
                 -- A microsecond apart in serving order: the record keeps the order the queue gave them out.
                 assigned_at = now() + assigned.turn * interval '1 microsecond',
                 assigned_agent_id = assigned.agent_id
             FROM assigned WHERE q.session_id = assigned.id AND q.is_active
         ),
         milestones AS (
             UPDATE session_analytics a
             SET first_assigned_at = now(),
                 wait_ms = (EXTRACT(EPOCH FROM now() - coalesce(a.handoff_requested_at, now())) * 1000)::bigint,
                 updated_at = now()
             FROM assigned WHERE a.session_id = assigned.id AND a.first_assigned_at IS NULL
         )
         SELECT pairs.session_id AS id, assigned.agent_id,
                CASE WHEN assigned.id IS NOT NULL THEN 'assigned'
                     WHEN locked.id IS NOT NULL
                          OR NOT EXISTS (SELECT 1 FROM chat_sessions s WHERE s.id = pairs.session_id) THEN 'gone'
                     ELSE 'busy' END AS outcome
         FROM pairs
         LEFT JOIN assigned ON assigned.id = pairs.session_id
         LEFT JOIN locked ON locked.id = pairs.session_id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&sessions)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&agents)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let outcome = match (row.outcome.as_str(), row.agent_id) {
                ("assigned", Some(agent_id)) => Assignment::Assigned(agent_id),
                ("busy", _) => Assignment::Busy,
                _ => Assignment::Gone,
            };
            (row.id, outcome)
        })
        .collect())
}

/// Moves an assigned session from one agent to another. Run it in a transaction.
pub async fn reassign(conn: &mut PgConn, session_id: Uuid, from_agent: Uuid, to_agent: Uuid) -> QueryResult<bool> {
    let changed = diesel::update(
        chat_sessions::table
            .find(session_id)
            .filter(chat_sessions::status.eq(SessionStatus::Assigned))
            .filter(chat_sessions::assigned_agent_id.eq(from_agent)),
    )
    .set((chat_sessions::assigned_agent_id.eq(to_agent), chat_sessions::updated_at.eq(Utc::now())))
    .execute(conn)
    .await?;
    if changed == 0 {
        return Ok(false);
    }
    super::analytics::transferred(conn, session_id).await?;
    Ok(true)
}

/// Takes a session off the queue without assigning it.
pub async fn remove(conn: &mut PgConn, session_id: Uuid) -> QueryResult<()> {
    diesel::update(
        queue_entries::table.filter(queue_entries::session_id.eq(session_id)).filter(queue_entries::is_active),
    )
    .set(queue_entries::is_active.eq(false))
    .execute(conn)
    .await
    .map(|_| ())
}

/// When the session first asked for a person, for putting it back in its old place.
pub async fn first_requested_at(conn: &mut PgConn, session_id: Uuid) -> QueryResult<Option<DateTime<Utc>>> {
    queue_entries::table
        .filter(queue_entries::session_id.eq(session_id))
        .select(diesel::dsl::min(queue_entries::requested_at))
        .first(conn)
        .await
}

/// Everything waiting, with names and the customer's latest words, in no particular order.
pub async fn waiting(conn: &mut PgConn) -> QueryResult<Vec<WaitingRow>> {
    type Row = (Uuid, Priority, Option<String>, DateTime<Utc>, String, Option<Uuid>, SessionStatus);
    let rows: Vec<Row> = queue_entries::table
        .inner_join(chat_sessions::table.on(chat_sessions::id.eq(queue_entries::session_id)))
        .inner_join(users::table.on(users::id.eq(chat_sessions::customer_id)))
        .filter(queue_entries::is_active)
        .filter(chat_sessions::status.eq_any([SessionStatus::Waiting, SessionStatus::Offline]))
        .select((
            queue_entries::session_id,
            queue_entries::priority,
            queue_entries::reason,
            queue_entries::requested_at,
            users::display_name,
            chat_sessions::team_id,
            chat_sessions::status,
        ))
        .load(conn)
        .await?;
    let session_ids: Vec<Uuid> = rows.iter().map(|row| row.0).collect();
    let previews: HashMap<Uuid, String> = chat_messages::table
        .filter(chat_messages::session_id.eq_any(&session_ids))
        .filter(chat_messages::sender_type.eq(SenderType::Customer))
        .filter(chat_messages::deleted_at.is_null())
        .order((chat_messages::session_id, chat_messages::seq.desc()))
        .distinct_on(chat_messages::session_id)
        .select((chat_messages::session_id, chat_messages::content))
        .load::<(Uuid, String)>(conn)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|(session_id, priority, reason, requested_at, customer_name, team_id, status)| WaitingRow {
            team_id,
            offline: status == SessionStatus::Offline,
            session_id,
            priority,
            reason,
            requested_at,
            customer_name,
            preview: previews.get(&session_id).cloned(),
        })
        .collect())
}

/// Puts an assigned session back in the queue. Run it in a transaction.
/// `requested_at` decides its place; a transfer passes the current time, an
/// agent who left passes `None` so the session keeps its first place in line.
/// Returns the session's priority, place time and customer name, or `None`
/// when it was not assigned to `agent_id`.
pub async fn requeue(
    conn: &mut PgConn,
    session_id: Uuid,
    agent_id: Uuid,
    priority: Option<Priority>,
    reason: &str,
    requested_at: Option<DateTime<Utc>>,
    to_team: Option<Uuid>,
) -> QueryResult<Option<Requeued>> {
    let found: Option<(Priority, String, Option<Uuid>)> = chat_sessions::table
        .inner_join(users::table.on(users::id.eq(chat_sessions::customer_id)))
        .filter(chat_sessions::id.eq(session_id))
        .filter(chat_sessions::status.eq(SessionStatus::Assigned))
        .filter(chat_sessions::assigned_agent_id.eq(agent_id))
        .select((chat_sessions::priority, users::display_name, chat_sessions::team_id))
        .first(conn)
        .await
        .optional()?;
    let Some((current, customer_name, team)) = found else { return Ok(None) };
    let team = match to_team {
        Some(team) => {
            // Checked, so an unknown team is the caller's mistake, not a broken reference.
            if !super::teams::exists(conn, team).await? {
                return Err(diesel::result::Error::NotFound);
            }
            diesel::update(chat_sessions::table.find(session_id))
                .set(chat_sessions::team_id.eq(team))
                .execute(conn)
                .await?;
            Some(team)
        }
        None => team,
    };
    let priority = priority.unwrap_or(current);
    let requested_at = match requested_at {
        Some(at) => at,
        None => first_requested_at(conn, session_id).await?.unwrap_or_else(Utc::now),
    };
    if !enqueue(conn, session_id, priority, Some(reason), requested_at, Some(agent_id)).await? {
        return Ok(None);
    }
    Ok(Some(Requeued { priority, requested_at, customer_name, team }))
}

/// Where a session stands back in the queue.
pub struct Requeued {
    pub priority: Priority,
    pub requested_at: DateTime<Utc>,
    pub customer_name: String,
    pub team: Option<Uuid>,
}

/// How many entries are waiting, as stored.
pub async fn active_count(conn: &mut PgConn) -> QueryResult<i64> {
    queue_entries::table.filter(queue_entries::is_active).count().get_result(conn).await
}
